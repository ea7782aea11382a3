package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKeyring(t *testing.T) *Keyring {
	t.Helper()
	k, err := NewKeyring(DefaultKeyID, bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKeyring(t)
	plain := []byte(`{"number":"4242424242424242"}`)
	a, err := k.Seal(plain, []byte("payment-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal(plain, []byte("payment-1"))
	if bytes.Equal(a, b) {
		t.Error("two seals of the same value are equal: the nonce is not random")
	}
	if a[0] != DefaultKeyID {
		t.Errorf("key ID byte = %d, want %d", a[0], DefaultKeyID)
	}
	if bytes.Contains(a, []byte("4242")) {
		t.Error("the sealed value contains the plaintext")
	}
	got, err := k.Open(a, []byte("payment-1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	t.Run("another record's AAD does not open it", func(t *testing.T) {
		if _, err := k.Open(a, []byte("payment-2")); !errors.Is(err, ErrOpen) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a flipped bit does not open", func(t *testing.T) {
		c := bytes.Clone(a)
		c[len(c)-1] ^= 1
		if _, err := k.Open(c, []byte("payment-1")); !errors.Is(err, ErrOpen) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("an unknown key ID is named", func(t *testing.T) {
		c := bytes.Clone(a)
		c[0] = 9
		if _, err := k.Open(c, []byte("payment-1")); !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), "key ID 9") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("another key does not open", func(t *testing.T) {
		other, _ := NewKeyring(DefaultKeyID, bytes.Repeat([]byte{8}, KeySize))
		if _, err := other.Open(a, []byte("payment-1")); !errors.Is(err, ErrOpen) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestMAC(t *testing.T) {
	k := testKeyring(t)
	if !bytes.Equal(k.MAC([]byte("a"), []byte("b")), k.MAC([]byte("a"), []byte("b"))) {
		t.Error("MAC is not deterministic")
	}
	if bytes.Equal(k.MAC([]byte("ab"), []byte("")), k.MAC([]byte("a"), []byte("b"))) {
		t.Error("parts are not delimited")
	}
	other, _ := NewKeyring(DefaultKeyID, bytes.Repeat([]byte{8}, KeySize))
	if bytes.Equal(k.MAC([]byte("a")), other.MAC([]byte("a"))) {
		t.Error("MAC does not depend on the key")
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if key, err := LoadKeyFile(write("good", bytes.Repeat([]byte{1}, 32))); err != nil || len(key) != 32 {
		t.Fatalf("32 bytes: %v", err)
	}
	for name, content := range map[string][]byte{
		"short":  bytes.Repeat([]byte{1}, 31),
		"long":   bytes.Repeat([]byte{1}, 33),
		"base64": []byte("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"),
		"empty":  nil,
	} {
		t.Run(name, func(t *testing.T) {
			p := write(name, content)
			_, err := LoadKeyFile(p)
			want := fmt.Sprintf("holds %d bytes", len(content))
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) ||
				!strings.Contains(err.Error(), "want exactly 32") {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}
