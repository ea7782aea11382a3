package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority. One CA signs every certificate of
// a test (Postgres, Redis, Sentinel and the services' mTLS identities), as
// the Shop's issuer does in a cluster.
type CA struct {
	// Cert is the self-signed CA certificate.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// CertSpec describes a certificate to issue.
type CertSpec struct {
	// CommonName is the subject's CN, e.g. a service or user name.
	CommonName string
	// Hosts are subject alternative names: IP addresses become IP SANs,
	// anything else a DNS SAN.
	Hosts []string
	// URIs are URI SANs, e.g. spiffe://cluster.local/ns/shop/sa/acme-order.
	URIs []string
}

// KeyPair is an issued certificate and its private key.
type KeyPair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	// TLS is the pair ready for a tls.Config.
	TLS tls.Certificate
}

// NewCA creates a certificate authority valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca, err := newCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "shopstack test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// PEM is the CA certificate, the content of a ca.crt.
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a certificate usable both as a server and as a client
// certificate: Redis replicas and Sentinels present their server certificate
// when they connect to each other, and the services' mTLS uses one identity
// both ways.
func (ca *CA) Issue(t testing.TB, spec CertSpec) *KeyPair {
	t.Helper()
	kp, err := ca.issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// ServerCert issues a certificate for the given host names and IP addresses.
func (ca *CA) ServerCert(t testing.TB, hosts ...string) *KeyPair {
	t.Helper()
	cn := "server"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	return ca.Issue(t, CertSpec{CommonName: cn, Hosts: hosts})
}

// ClientCert issues a client identity named commonName with optional URI SANs
// (SPIFFE IDs).
func (ca *CA) ClientCert(t testing.TB, commonName string, uris ...string) *KeyPair {
	t.Helper()
	return ca.Issue(t, CertSpec{CommonName: commonName, URIs: uris})
}

func (ca *CA) issue(spec CertSpec) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.CommonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(23 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range spec.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, u := range spec.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("URI SAN %q: %w", u, err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuing a certificate for %q: %w", spec.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if kp.Cert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	if kp.TLS, err = tls.X509KeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
		return nil, err
	}
	return kp, nil
}

// TLSDir writes ca.crt and, when kp is not nil, tls.crt and tls.key into a
// new temporary directory and returns it: the layout the operator mounts at
// /etc/shopstack/tls and the services find through SHOPSTACK_TLS_DIR.
func (ca *CA) TLSDir(t testing.TB, kp *KeyPair) string {
	t.Helper()
	dir := t.TempDir()
	if err := ca.writeTLSDir(dir, kp); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (ca *CA) writeTLSDir(dir string, kp *KeyPair) error {
	files := map[string][]byte{"ca.crt": ca.pem}
	if kp != nil {
		files["tls.crt"] = kp.CertPEM
		files["tls.key"] = kp.KeyPEM
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
