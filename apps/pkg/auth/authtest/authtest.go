// Package authtest makes the token signing files the operator would mount
// (a PKCS #8 signing key, its kid and the public JWKS) and mints tokens, for
// tests of services that issue or require end-user tokens.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/auth"
)

// Issuer is a signing key on disk with its published JWKS.
type Issuer struct {
	Issuer, Audience string
	KeyFile          string // SHOPSTACK_JWT_SIGNING_KEY_FILE
	KeyIDFile        string // SHOPSTACK_JWT_KEY_ID_FILE
	JWKSFile         string // SHOPSTACK_JWKS_FILE
	Signer           *auth.Signer
}

// NewIssuer writes a fresh key pair to a temporary directory.
func NewIssuer(t testing.TB, issuer, audience string) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := auth.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := auth.PublicJWK(&key.PublicKey, kid)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(auth.JWKS{Keys: []auth.JWK{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	i := &Issuer{
		Issuer: issuer, Audience: audience,
		KeyFile:   filepath.Join(dir, "signing.key"),
		KeyIDFile: filepath.Join(dir, "kid"),
		JWKSFile:  filepath.Join(dir, "jwks.json"),
	}
	for path, content := range map[string][]byte{
		i.KeyFile:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		i.KeyIDFile: []byte(kid),
		i.JWKSFile:  jwks,
	} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	i.Signer, err = auth.NewSigner(auth.SignerConfig{
		KeyFile: i.KeyFile, KeyIDFile: i.KeyIDFile, Issuer: issuer, Audience: audience,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// Token is a valid access token for subject with roles.
func (i *Issuer) Token(t testing.TB, subject string, roles ...string) string {
	t.Helper()
	tok, err := i.Signer.Issue(subject, roles)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Value
}

// Verifier is a verifier of the issuer's tokens.
func (i *Issuer) Verifier(t testing.TB) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{
		JWKSFile: i.JWKSFile, Issuer: i.Issuer, Audience: i.Audience, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
