package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// signerFiles writes the signing key Secret as the operator makes it.
func signerFiles(t *testing.T, k testKey) (keyFile, kidFile string) {
	t.Helper()
	dir := t.TempDir()
	keyFile, kidFile = filepath.Join(dir, "signing.key"), filepath.Join(dir, "kid")
	writeFile(t, keyFile, k.pkcs8PEM(t))
	writeFile(t, kidFile, []byte(k.kid))
	return keyFile, kidFile
}

func TestSigner(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	key := newTestKey(t, "kid-1")
	keyFile, kidFile := signerFiles(t, key)
	s, err := NewSigner(SignerConfig{KeyFile: keyFile, KeyIDFile: kidFile, Issuer: issuer, Audience: aud, TTL: 5 * time.Minute, Now: clk.now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	v, jwksPath := verifierFor(t, clk, key)

	t.Run("issued tokens verify with the published key", func(t *testing.T) {
		tok, err := s.Issue("user-1", []string{"customer", "admin"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(tok.Value)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "user-1" || !slices.Equal(c.Roles, []string{"customer", "admin"}) || c.ID == "" ||
			!c.ExpiresAt.Equal(clk.now().Add(5*time.Minute)) || !c.IssuedAt.Equal(clk.now()) || !tok.ExpiresAt.Equal(c.ExpiresAt) {
			t.Fatalf("claims %+v, token %+v", c, tok)
		}
		if tok.KeyID != "kid-1" {
			t.Fatalf("kid %q", tok.KeyID)
		}
	})
	t.Run("tokens expire after the TTL", func(t *testing.T) {
		tok, _ := s.Issue("user-1", nil)
		later := &clock{t: clk.now().Add(5*time.Minute + MaxLeeway)}
		v2, err := NewVerifier(VerifierConfig{JWKSFile: jwksPath, Issuer: issuer, Audience: aud, Now: later.now, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v2.Verify(tok.Value); err == nil {
			t.Fatal("accepted after TTL and leeway")
		}
	})
	t.Run("each token has its own ID", func(t *testing.T) {
		a, _ := s.Issue("user-1", nil)
		b, _ := s.Issue("user-1", nil)
		ca, _ := v.Verify(a.Value)
		cb, _ := v.Verify(b.Value)
		if ca.ID == cb.ID {
			t.Fatal("same jti twice")
		}
	})
	t.Run("no subject, no token", func(t *testing.T) {
		if _, err := s.Issue("", nil); err == nil {
			t.Fatal("issued a token without a subject")
		}
	})
	t.Run("a rotated key file is used without a restart", func(t *testing.T) {
		next := newTestKey(t, "kid-2")
		writeFile(t, keyFile, next.pkcs8PEM(t))
		writeFile(t, kidFile, []byte(next.kid))
		clk.advance(DefaultReloadInterval)
		tok, err := s.Issue("user-1", nil)
		if err != nil || tok.KeyID != "kid-2" {
			t.Fatalf("%+v %v", tok, err)
		}
		writeFile(t, jwksPath, jwksJSON(t, key, next))
		clk.advance(DefaultReloadInterval)
		if _, err := v.Verify(tok.Value); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSignerKeyID(t *testing.T) {
	key := newTestKey(t, "")
	keyFile, _ := signerFiles(t, key)
	s, err := NewSigner(SignerConfig{KeyFile: keyFile, Issuer: issuer, Audience: aud, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Issue("user-1", nil)
	want, _ := KeyID(&key.priv.PublicKey)
	// The operator names keys the same way: a JWKS it derives matches.
	if tok.KeyID != want || len(want) != 22 {
		t.Fatalf("kid %q, want %q", tok.KeyID, want)
	}
}

func TestSignerKeyErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	p256 := newTestKey(t, "k")
	sec1, _ := x509.MarshalECPrivateKey(p256.priv)
	for name, data := range map[string][]byte{
		"not PEM":            []byte("nope"),
		"P-384":              pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}),
		"SEC 1, not PKCS #8": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "signing.key")
			writeFile(t, path, data)
			_, err := NewSigner(SignerConfig{KeyFile: path, Issuer: issuer, Audience: aud, Logger: discard})
			if err == nil || !strings.Contains(err.Error(), "signing key") {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := NewSigner(SignerConfig{KeyFile: "x"}); err == nil {
		t.Fatal("a signer without issuer and audience was made")
	}
}
