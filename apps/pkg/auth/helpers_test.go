package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	issuer = "https://shop.example.com"
	aud    = "shopstack:shop/acme"
)

var discard = slog.New(slog.DiscardHandler)

// testKey is a signing key pair with its kid.
type testKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newTestKey(t *testing.T, kid string) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, kid: kid}
}

func (k testKey) jwk(t *testing.T) JWK {
	t.Helper()
	j, err := PublicJWK(&k.priv.PublicKey, k.kid)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (k testKey) pkcs8PEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func jwksJSON(t *testing.T, keys ...testKey) []byte {
	t.Helper()
	set := JWKS{Keys: []JWK{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk(t))
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile replaces path atomically, as the kubelet's symlink swap does.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// verifierFor writes a JWKS with keys and returns a verifier over it.
func verifierFor(t *testing.T, clk *clock, keys ...testKey) (*Verifier, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, jwksJSON(t, keys...))
	v, err := NewVerifier(VerifierConfig{
		JWKSFile: path, Issuer: issuer, Audience: aud, Now: clk.now, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, path
}

// claimsAt are valid claims for a token issued at now.
func claimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss": issuer, "sub": "user-1", "aud": aud, "roles": []string{"customer"},
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// es256 signs arbitrary header fields and claims with k.
func es256(t *testing.T, k testKey, hdr header, claims map[string]any) string {
	t.Helper()
	if hdr.Alg == "" {
		hdr.Alg = Algorithm
	}
	tok, err := sign(k.priv, hdr, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds header.payload.signature by hand, for tokens no honest
// issuer would make.
func unsigned(t *testing.T, hdr map[string]any, claims map[string]any, sig []byte) string {
	t.Helper()
	hb, _ := json.Marshal(hdr)
	cb, _ := json.Marshal(claims)
	return b64.EncodeToString(hb) + "." + b64.EncodeToString(cb) + "." + b64.EncodeToString(sig)
}

// hs256 signs with HMAC-SHA256 keyed with secret: the algorithm-confusion
// attack uses the server's public key as the secret.
func hs256(t *testing.T, kid string, claims map[string]any, secret []byte) string {
	t.Helper()
	hb, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"})
	cb, _ := json.Marshal(claims)
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}
