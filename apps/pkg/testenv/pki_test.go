package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestCAIssuesCertificatesForBothEnds(t *testing.T) {
	ca := NewCA(t)
	server := ca.ServerCert(t, "127.0.0.1", "localhost")
	client := ca.ClientCert(t, "order", "spiffe://cluster.local/ns/shop/sa/acme-order")

	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := server.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if got := client.Cert.URIs; len(got) != 1 || got[0].String() != "spiffe://cluster.local/ns/shop/sa/acme-order" {
		t.Errorf("URI SANs = %v", got)
	}
	if _, err := server.Cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: NewCA(t).Pool()}); err == nil {
		t.Error("a certificate verified against another CA")
	}
}

func TestCAHandshake(t *testing.T) {
	ca := NewCA(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.ServerCert(t, "127.0.0.1").TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Write([]byte("ok"))
			_ = c.Close()
		}
	}()
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{
		RootCAs:      ca.Pool(),
		Certificates: []tls.Certificate{ca.ClientCert(t, "order").TLS},
	})
	if err != nil {
		t.Fatalf("mutual TLS handshake: %v", err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestTLSDirLayout(t *testing.T) {
	ca := NewCA(t)
	dir := ca.TLSDir(t, ca.ClientCert(t, "order"))
	for _, name := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Error(err)
	}
	caOnly := ca.TLSDir(t, nil)
	if _, err := os.Stat(filepath.Join(caOnly, "tls.crt")); !os.IsNotExist(err) {
		t.Errorf("TLSDir(nil) wrote tls.crt: %v", err)
	}
}

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(p)))
		if err != nil {
			t.Fatalf("binding the free port %d: %v", p, err)
		}
		_ = l.Close()
	}
}
