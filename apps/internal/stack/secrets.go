package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// SigningKeys are the token signing files in the operator's formats: the
// user service's PKCS #8 signing key and its kid (the jwt-signing Secret) and
// the public JWKS every service verifies with (the <shop>-jwks ConfigMap).
type SigningKeys struct {
	KeyFile, KeyIDFile, JWKSFile string
	Issuer, Audience             string

	mu        sync.Mutex
	current   *ecdsa.PrivateKey
	currentID string
	published []auth.JWK
}

func newSigningKeys(dir, issuer, audience string) (*SigningKeys, error) {
	for _, d := range []string{filepath.Join(dir, "jwt"), filepath.Join(dir, "jwks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	k := &SigningKeys{
		KeyFile:   filepath.Join(dir, "jwt", "signing.key"),
		KeyIDFile: filepath.Join(dir, "jwt", "kid"),
		JWKSFile:  filepath.Join(dir, "jwks", "jwks.json"),
		Issuer:    issuer, Audience: audience,
	}
	if _, err := k.Rotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// Rotate makes a new key the signing key, the way a rotation is delivered:
// first the new public key joins the JWKS (the old one stays published so
// tokens already out still verify), then the user service's signing key and
// kid are replaced. Services pick both up without a restart. It returns the
// new kid.
func (k *SigningKeys) Rotate() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	kid, err := auth.KeyID(&key.PublicKey)
	if err != nil {
		return "", err
	}
	jwk, err := auth.PublicJWK(&key.PublicKey, kid)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	jwks, err := json.Marshal(auth.JWKS{Keys: append(append([]auth.JWK(nil), k.published...), jwk)})
	if err != nil {
		return "", err
	}
	if err := writeAtomic(k.JWKSFile, jwks); err != nil {
		return "", err
	}
	k.published = append(k.published, jwk)
	if err := writeAtomic(k.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", err
	}
	if err := writeAtomic(k.KeyIDFile, []byte(kid)); err != nil {
		return "", err
	}
	k.current, k.currentID = key, kid
	return kid, nil
}

// Current is the signing key and its kid.
func (k *SigningKeys) Current() (*ecdsa.PrivateKey, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current, k.currentID
}

// Token mints an access token as the user service would: ES256 with the
// current key, iss, aud, sub, roles, iat and exp.
func (k *SigningKeys) Token(subject string, roles []string, ttl time.Duration) (string, error) {
	key, kid := k.Current()
	now := time.Now()
	return SignJWT(key, map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid}, map[string]any{
		"iss": k.Issuer, "aud": k.Audience, "sub": subject, "roles": roles,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
}

// SignJWT signs any header and claims with an ES256 signature (key nil
// leaves the signature empty), for tokens the user service would never
// issue.
func SignJWT(key *ecdsa.PrivateKey, header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if key == nil {
		return input + ".", nil
	}
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// writeSecrets lays out what the operator mounts: signing key and JWKS, the
// admin Secret, the payment key and each service's TLS and passwords.
func (st *Stack) writeSecrets() error {
	var err error
	if st.Keys, err = newSigningKeys(st.Dir, st.Issuer, st.Audience); err != nil {
		return err
	}
	st.AdminUsername, st.AdminPassword = "admin", rand.Text()
	adminDir := filepath.Join(st.Dir, "admin")
	if err := os.MkdirAll(adminDir, 0o700); err != nil {
		return err
	}
	for name, v := range map[string]string{"username": st.AdminUsername, "password": st.AdminPassword} {
		if err := os.WriteFile(filepath.Join(adminDir, name), []byte(v), 0o600); err != nil {
			return err
		}
	}
	paymentDir := filepath.Join(st.Dir, "payment")
	if err := os.MkdirAll(paymentDir, 0o700); err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(paymentDir, "encryption.key"), key, 0o600)
}

// issueServiceCert is what the operator's cert-manager Certificate asks for:
// the SPIFFE ID as a URI SAN and, here, the loopback names as DNS and IP SANs.
func (st *Stack) issueServiceCert(svc string) (*testenv.KeyPair, error) {
	return st.CA.IssueOrError(testenv.CertSpec{
		CommonName: ShopName + "-" + svc,
		Hosts:      []string{"127.0.0.1", "localhost"},
		URIs:       []string{SPIFFEID(svc)},
	})
}

// RotateCert renews a service's certificate in place (a new key and serial
// in tls.key and tls.crt), as cert-manager does; the service serves it to
// new connections without a restart. It returns the new certificate.
func (st *Stack) RotateCert(svc string) (*x509.Certificate, error) {
	s := st.Service(svc)
	kp, err := st.issueServiceCert(svc)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(s.TLSDir, "tls.key"), kp.KeyPEM); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(s.TLSDir, "tls.crt"), kp.CertPEM); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cert = kp
	s.mu.Unlock()
	return kp.Cert, nil
}

// writeAtomic replaces a file by renaming a complete new one over it, so a
// reader sees either the old content or the new.
func writeAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, time.Now().UnixNano())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
