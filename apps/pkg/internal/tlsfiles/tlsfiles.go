// Package tlsfiles builds client TLS configurations from the files the
// operator mounts into every service (SHOPSTACK_TLS_DIR): ca.crt, and the
// service's own tls.crt and tls.key.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside a TLS directory, as cert-manager writes them.
const (
	CAFile   = "ca.crt"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Mode says how much of the server's certificate a client checks.
type Mode int

const (
	// VerifyFull checks the chain against ca.crt and the host name.
	VerifyFull Mode = iota
	// VerifyCA checks the chain against ca.crt but not the host name.
	VerifyCA
	// NoVerify encrypts without checking the server at all.
	NoVerify
)

// ClientConfig returns a TLS configuration that trusts dir/ca.crt and, when
// dir holds tls.crt and tls.key, presents them as the client certificate.
//
// The client certificate is read from disk at every handshake rather than
// once: cert-manager renews it in place and a long-running pod must not keep
// presenting the expired one. Handshakes happen only when a connection is
// opened, so the cost is small.
func ClientConfig(dir, serverName string, mode Mode) (*tls.Config, error) {
	caPath := filepath.Join(dir, CAFile)
	pool := x509.NewCertPool()
	if mode != NoVerify {
		pem, err := os.ReadFile(caPath)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA bundle %s holds no PEM certificate", caPath)
		}
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		ServerName: serverName,
	}
	switch mode {
	case VerifyCA:
		// Go has no "chain only" switch: skip its check and verify the chain
		// ourselves, ignoring the name.
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		}
	case NoVerify:
		cfg.InsecureSkipVerify = true
	}

	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	hasCert, hasKey := exists(certPath), exists(keyPath)
	switch {
	case hasCert && hasKey:
		if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certPath, keyPath)
			if err != nil {
				return nil, fmt.Errorf("loading the client certificate: %w", err)
			}
			return &c, nil
		}
	case hasCert != hasKey:
		return nil, fmt.Errorf("%s holds only one of %s and %s", dir, CertFile, KeyFile)
	}
	return cfg, nil
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("the server presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
