// Package mtlstest makes throwaway certificate authorities and service
// certificates for tests, laid out on disk the way the kubelet mounts a
// cert-manager Secret, so tests exercise real TLS handshakes and real
// certificate rotation.
package mtlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// The files of a certificate Secret (the same names as package mtls uses).
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

var serials atomic.Int64

// CA is a certificate authority, like the per-Shop CA the operator
// bootstraps with cert-manager.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte
}

// Leaf is a service certificate and its key, PEM-encoded.
type Leaf struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

// LeafOption adjusts a certificate before it is signed.
type LeafOption func(*x509.Certificate)

// Validity sets the validity period.
func Validity(notBefore, notAfter time.Time) LeafOption {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = notBefore, notAfter }
}

// ExtraURI adds a URI SAN.
func ExtraURI(uri string) LeafOption {
	return func(c *x509.Certificate) {
		if u, err := url.Parse(uri); err == nil {
			c.URIs = append(c.URIs, u)
		}
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// NewCA returns a CA valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a service certificate as the operator's Certificate asks for
// one: ECDSA P-256, server and client auth, the SPIFFE ID as a URI SAN (none
// when spiffeID is empty) and the DNS names. It is valid from a minute ago
// for an hour, and every certificate gets a new serial number.
func (ca *CA) Issue(t testing.TB, spiffeID string, dnsNames []string, opts ...LeafOption) Leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1)), Subject: pkix.Name{CommonName: "service"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dnsNames, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if spiffeID != "" {
		ExtraURI(spiffeID)(tmpl)
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Cert:    cert,
	}
}

// Files are the contents of a certificate Secret: the leaf, its key and a CA
// bundle of the given CAs.
func Files(l Leaf, cas ...*CA) map[string][]byte {
	var bundle []byte
	for _, ca := range cas {
		bundle = append(bundle, ca.PEM...)
	}
	return map[string][]byte{CertFile: l.CertPEM, KeyFile: l.KeyPEM, CAFile: bundle}
}

// SecretDir is a Secret volume as the kubelet lays it out: the files live in
// a timestamped hidden directory, ..data points to it, and each visible name
// is a symlink through ..data. Update writes a new hidden directory and
// renames a new ..data symlink over the old one, atomically, as the kubelet
// does when the Secret changes.
type SecretDir struct {
	Dir     string
	version int
}

// NewSecretDir lays out files in a new temporary directory.
func NewSecretDir(t testing.TB, files map[string][]byte) *SecretDir {
	t.Helper()
	s := &SecretDir{Dir: t.TempDir()}
	s.Update(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(s.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Update replaces the files atomically. The set of names must not change.
func (s *SecretDir) Update(t testing.TB, files map[string][]byte) {
	t.Helper()
	s.version++
	hidden := fmt.Sprintf("..2026_01_01_00_00_00.%d", s.version)
	if err := os.Mkdir(filepath.Join(s.Dir, hidden), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, hidden, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(s.Dir, "..data_tmp")
	if err := os.Symlink(hidden, tmp); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(s.Dir, "..data"))
	if err := os.Rename(tmp, filepath.Join(s.Dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(s.Dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// ServiceDir issues a certificate for spiffeID and dnsNames and lays it out
// with the CA bundle of ca, ready for mtls.NewSource or SHOPSTACK_TLS_DIR.
func ServiceDir(t testing.TB, ca *CA, spiffeID string, dnsNames ...string) *SecretDir {
	t.Helper()
	return NewSecretDir(t, Files(ca.Issue(t, spiffeID, dnsNames), ca))
}
