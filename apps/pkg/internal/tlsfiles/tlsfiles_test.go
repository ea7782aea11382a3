package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/internal/tlsfiles"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// serve accepts TLS connections with a certificate for hosts and reports the
// client certificate's common name of each handshake.
func serve(t *testing.T, ca *testenv.CA, hosts ...string) (addr string, clients <-chan string) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.ServerCert(t, hosts...).TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ch := make(chan string, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				cn := ""
				if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
					cn = certs[0].Subject.CommonName
				}
				ch <- cn
			}
			_ = c.Close()
		}
	}()
	return l.Addr().String(), ch
}

func dial(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	err = c.Handshake()
	_ = c.Close()
	return err
}

func TestModes(t *testing.T) {
	ca := testenv.NewCA(t)
	addr, _ := serve(t, ca, "db.internal") // the certificate does not name 127.0.0.1
	dir := ca.TLSDir(t, nil)

	full, err := tlsfiles.ClientConfig(dir, "127.0.0.1", tlsfiles.VerifyFull)
	if err != nil {
		t.Fatal(err)
	}
	var hostErr x509.HostnameError
	if err := dial(addr, full); !errors.As(err, &hostErr) {
		t.Errorf("verify-full against a certificate for another name: %v", err)
	}
	byName, _ := tlsfiles.ClientConfig(dir, "db.internal", tlsfiles.VerifyFull)
	if err := dial(addr, byName); err != nil {
		t.Errorf("verify-full with the right name: %v", err)
	}
	chainOnly, _ := tlsfiles.ClientConfig(dir, "127.0.0.1", tlsfiles.VerifyCA)
	if err := dial(addr, chainOnly); err != nil {
		t.Errorf("verify-ca ignores the name but failed: %v", err)
	}
	otherDir := testenv.NewCA(t).TLSDir(t, nil)
	for _, mode := range []tlsfiles.Mode{tlsfiles.VerifyFull, tlsfiles.VerifyCA} {
		other, _ := tlsfiles.ClientConfig(otherDir, "db.internal", mode)
		if err := dial(addr, other); err == nil {
			t.Errorf("mode %d accepted a server from another CA", mode)
		}
	}
	none, err := tlsfiles.ClientConfig(t.TempDir(), "", tlsfiles.NoVerify)
	if err != nil {
		t.Fatalf("no verification needs no CA file: %v", err)
	}
	if err := dial(addr, none); err != nil {
		t.Error(err)
	}
}

func TestClientCertificateIsReadAtEachHandshake(t *testing.T) {
	ca := testenv.NewCA(t)
	addr, clients := serve(t, ca, "127.0.0.1")
	dir := ca.TLSDir(t, ca.ClientCert(t, "order"))
	cfg, err := tlsfiles.ClientConfig(dir, "127.0.0.1", tlsfiles.VerifyFull)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(addr, cfg); err != nil {
		t.Fatal(err)
	}
	if cn := <-clients; cn != "order" {
		t.Errorf("client certificate %q, want order", cn)
	}
	// cert-manager renews the certificate in place.
	renewed := ca.ClientCert(t, "order-renewed")
	for name, data := range map[string][]byte{"tls.crt": renewed.CertPEM, "tls.key": renewed.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := dial(addr, cfg); err != nil {
		t.Fatal(err)
	}
	if cn := <-clients; cn != "order-renewed" {
		t.Errorf("after renewal the client presented %q", cn)
	}
}

func TestBrokenDirectories(t *testing.T) {
	ca := testenv.NewCA(t)
	kp := ca.ClientCert(t, "order")
	for name, files := range map[string]map[string][]byte{
		"no CA":          {},
		"CA is not PEM":  {"ca.crt": []byte("hello")},
		"only a cert":    {"ca.crt": ca.PEM(), "tls.crt": kp.CertPEM},
		"key mismatched": {"ca.crt": ca.PEM(), "tls.crt": kp.CertPEM, "tls.key": ca.ClientCert(t, "other").KeyPEM},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, data := range files {
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tlsfiles.ClientConfig(dir, "x", tlsfiles.VerifyFull); err == nil {
				t.Error("no error")
			}
		})
	}
}
