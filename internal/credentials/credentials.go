// Package credentials generates the values of the Secrets a Shop gets once
// (passwords, the token signing key, the payment encryption key) and derives
// the public JWKS from the signing key.
package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/shopstack/shopstack/internal/builder"
)

// Services that own a Postgres role and database, and those with a Redis user.
var (
	postgresServices = []string{"user", "order", "payment", "inventory"}
	redisServices    = []string{"user", "order", "inventory"}
)

// Password returns a random password of 32 base32 characters (160 bits).
func Password() string {
	return rand.Text() + rand.Text()[:6]
}

// Generate returns fresh data for one credentials Secret.
func Generate(kind builder.CredentialKind) (map[string][]byte, error) {
	switch kind {
	case builder.CredJWTSigning:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		kid, err := KeyID(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{
			builder.KeyJWTSigningKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
			builder.KeyJWTKeyID:      []byte(kid),
		}, nil
	case builder.CredPayment:
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return map[string][]byte{builder.KeyEncryptionKey: key}, nil
	case builder.CredAdmin:
		return map[string][]byte{
			builder.KeyUsername: []byte("admin"),
			builder.KeyPassword: []byte(Password()),
		}, nil
	case builder.CredPostgres:
		data := map[string][]byte{}
		for _, k := range append([]string{builder.KeyPGSuperuser, builder.KeyPGReplication, builder.KeyPGOperator}, postgresServices...) {
			data[k] = []byte(Password())
		}
		return data, nil
	case builder.CredRedis:
		data := map[string][]byte{}
		for _, k := range append([]string{builder.KeyRedisReplication, builder.KeyRedisSentinel}, redisServices...) {
			data[k] = []byte(Password())
		}
		data[builder.KeyRedisACL] = []byte(RedisACL(data))
		return data, nil
	}
	return nil, fmt.Errorf("unknown credentials kind %q", kind)
}

// RedisACL is the Redis ACL file for the given passwords: the default user
// off, replication and Sentinel with only the commands they need, and each
// service confined to keys and channels under its own prefix.
func RedisACL(passwords map[string][]byte) string {
	h := func(user string) string {
		sum := sha256.Sum256(passwords[user])
		return "#" + hex.EncodeToString(sum[:])
	}
	lines := []string{
		"user default off",
		fmt.Sprintf("user %s on %s -@all +psync +replconf +ping", builder.KeyRedisReplication, h(builder.KeyRedisReplication)),
		fmt.Sprintf("user %s on %s allchannels -@all +auth +client|setname +client|kill +config|rewrite +exec +info +multi +ping +publish +role +script|kill +slaveof +replicaof +subscribe", builder.KeyRedisSentinel, h(builder.KeyRedisSentinel)),
	}
	for _, svc := range redisServices {
		lines = append(lines, fmt.Sprintf("user %s on %s ~%s:* &%s:* +@all -@admin -@dangerous", svc, h(svc), svc, svc))
	}
	return strings.Join(lines, "\n") + "\n"
}

// KeyID names a public key: the first 16 bytes of the SHA-256 of its DER
// encoding, base64url. The same key always gets the same kid.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:16]), nil
}

// JWK is a public EC key in JSON Web Key form.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS derives the public key set from the signing key Secret's data.
func JWKS(data map[string][]byte) (string, error) {
	block, _ := pem.Decode(data[builder.KeyJWTSigningKey])
	if block == nil {
		return "", errors.New("the signing key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("parsing the signing key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return "", errors.New("the signing key is not an ECDSA P-256 key")
	}
	kid := string(data[builder.KeyJWTKeyID])
	if kid == "" {
		if kid, err = KeyID(&key.PublicKey); err != nil {
			return "", err
		}
	}
	pub, err := key.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		return "", err
	}
	jwk := JWK{
		Kty: "EC", Crv: "P-256", Kid: kid, Alg: "ES256", Use: "sig",
		X: base64.RawURLEncoding.EncodeToString(pub[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(pub[33:65]),
	}
	b, err := json.Marshal(struct {
		Keys []JWK `json:"keys"`
	}{[]JWK{jwk}})
	return string(b), err
}

// required lists the keys each credentials Secret must hold, non-empty.
var required = map[builder.CredentialKind][]string{
	builder.CredJWTSigning: {builder.KeyJWTSigningKey, builder.KeyJWTKeyID},
	builder.CredPayment:    {builder.KeyEncryptionKey},
	builder.CredAdmin:      {builder.KeyUsername, builder.KeyPassword},
	builder.CredPostgres:   append([]string{builder.KeyPGSuperuser, builder.KeyPGReplication, builder.KeyPGOperator}, postgresServices...),
	builder.CredRedis:      append([]string{builder.KeyRedisReplication, builder.KeyRedisSentinel, builder.KeyRedisACL}, redisServices...),
}

// Validate reports what makes an existing credentials Secret unusable: a
// missing or empty key, a signing key that is not ECDSA P-256, an encryption
// key that is not 32 bytes. The operator reports it and never overwrites it.
func Validate(kind builder.CredentialKind, data map[string][]byte) error {
	var missing []string
	for _, k := range required[kind] {
		if len(data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing or empty key(s) %s", strings.Join(missing, ", "))
	}
	switch kind {
	case builder.CredJWTSigning:
		if _, err := JWKS(data); err != nil {
			return err
		}
	case builder.CredPayment:
		if n := len(data[builder.KeyEncryptionKey]); n != 32 {
			return fmt.Errorf("%s has %d bytes, want 32 (AES-256)", builder.KeyEncryptionKey, n)
		}
	}
	return nil
}
