// Package crypto seals card data with AES-256-GCM under the key the operator
// manages (SHOPSTACK_ENCRYPTION_KEY_FILE, 32 random bytes), and derives from
// the same key the MAC that identifies repeated requests.
//
// A sealed value is
//
//	key ID (1 byte) | nonce (12 random bytes) | ciphertext and GCM tag
//
// The key ID names the key that sealed it, so a later key rotation can add
// a new key for sealing while older values still open with theirs.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

// DefaultKeyID is the ID of the key read from the key file: the first key.
const DefaultKeyID byte = 1

const nonceSize = 12

// ErrOpen means a sealed value could not be opened: it was sealed with an
// unknown key, altered, or belongs to another record.
var ErrOpen = errors.New("crypto: the sealed value cannot be opened")

// LoadKeyFile reads a key file, which must hold exactly KeySize bytes. The
// error says what is wrong without showing any of the content.
func LoadKeyFile(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the encryption key: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("the encryption key file %s holds %d bytes, want exactly %d (a raw AES-256 key, not text or base64)", path, len(key), KeySize)
	}
	return key, nil
}

// Keyring seals with its current key and opens with any key it holds.
type Keyring struct {
	current byte
	aeads   map[byte]cipher.AEAD
	macKey  []byte
}

// NewKeyring returns a keyring holding one key, under id.
func NewKeyring(id byte, key []byte) (*Keyring, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("crypto: the key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// A separate key for the MAC: one key, one purpose.
	macKey, err := hkdf.Key(sha256.New, key, nil, "shopstack payment request mac v1", sha256.Size)
	if err != nil {
		return nil, err
	}
	return &Keyring{current: id, aeads: map[byte]cipher.AEAD{id: aead}, macKey: macKey}, nil
}

// Seal encrypts plaintext with the current key, bound to aad: the value
// opens only with the same aad.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+k.aeads[k.current].Overhead())
	out[0] = k.current
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return k.aeads[k.current].Seal(out, out[1:1+nonceSize], plaintext, aad), nil
}

// Open decrypts a value Seal produced with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize {
		return nil, ErrOpen
	}
	aead, ok := k.aeads[sealed[0]]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key ID %d", ErrOpen, sealed[0])
	}
	plain, err := aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// MAC is HMAC-SHA256 over the parts, each length-prefixed so that no two
// different lists of parts give the same input.
func (k *Keyring) MAC(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k.macKey)
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}
