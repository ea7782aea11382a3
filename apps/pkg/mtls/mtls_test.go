package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

// serve runs handler on a loopback TLS listener with conf until the test ends.
func serve(t *testing.T, conf *tls.Config, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, TLSConfig: conf, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

// call makes one request on a fresh connection and returns the response with
// its body read.
func call(conf *tls.Config, url string) (*http.Response, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: conf, ForceAttemptHTTP2: true, DisableKeepAlives: true,
	}}
	resp, err := client.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// handshake connects with conf and reports the server's verdict. Under TLS
// 1.3 the client finishes its side first, so a refusal of the client
// certificate arrives as an alert on the first read.
func handshake(conf *tls.Config, url string) error {
	d := &tls.Dialer{Config: conf, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	c, err := d.Dial("tcp", strings.TrimPrefix(url, "https://"))
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

// whoAmI answers with the caller identity and certificate serial it saw.
var whoAmI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, _ := CallerFrom(r.Context())
	fmt.Fprintf(w, "%s %s", id, r.TLS.PeerCertificates[0].SerialNumber)
})

func internalServer(t *testing.T, ca *mtlstest.CA, allowed ...string) (url string, src *Source, dir *mtlstest.SecretDir) {
	t.Helper()
	src, dir = loadSource(t, mtlstest.Files(ca.Issue(t, paymentID, []string{paymentDNS}), ca))
	authorize, err := RequireCaller(allowed)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, src.MutualTLS(), authorize(whoAmI)), src, dir
}

func clientFor(t *testing.T, ca *mtlstest.CA, id string, peer Peer) *tls.Config {
	t.Helper()
	src, _ := loadSource(t, mtlstest.Files(ca.Issue(t, id, nil), ca))
	conf, err := src.ClientTLS(peer)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestInternalListener(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	url, _, _ := internalServer(t, ca, orderID)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)

	t.Run("an allowed SPIFFE ID gets 200 and its identity in the context", func(t *testing.T) {
		resp, body, err := call(clientFor(t, ca, orderID, Peer{SPIFFEID: paymentID}), url)
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(body, orderID+" ") {
			t.Fatalf("%v %v %q", err, resp, body)
		}
		if resp.ProtoMajor != 2 || resp.TLS.Version != tls.VersionTLS13 {
			t.Errorf("want HTTP/2 over TLS 1.3, got %s over %x", resp.Proto, resp.TLS.Version)
		}
	})
	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		conf := &tls.Config{RootCAs: pool, ServerName: paymentDNS}
		if _, _, err := call(conf, url); err == nil {
			t.Fatal("served without a client certificate")
		}
		if err := handshake(conf, url); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a certificate from another CA fails the handshake", func(t *testing.T) {
		rogue := mtlstest.NewCA(t, "rogue CA").Issue(t, orderID, nil)
		cert, err := tls.X509KeyPair(rogue.CertPEM, rogue.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		conf := &tls.Config{RootCAs: pool, ServerName: paymentDNS, GetClientCertificate: always(cert)}
		if _, _, err := call(conf, url); err == nil {
			t.Fatal("served a client certificate from another CA")
		}
		if err := handshake(conf, url); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a valid SPIFFE ID that is not allowed gets a 403 JSON error", func(t *testing.T) {
		resp, body, err := call(clientFor(t, ca, userID, Peer{SPIFFEID: paymentID}), url)
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v %v %q", err, resp, body)
		}
		var e httpx.ErrorBody
		if json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, userID) {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("a certificate without a SPIFFE ID gets 403", func(t *testing.T) {
		resp, _, err := call(clientFor(t, ca, "", Peer{SPIFFEID: paymentID}), url)
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v %v", err, resp)
		}
	})
	t.Run("the client refuses a callee with the wrong SPIFFE ID", func(t *testing.T) {
		inventory := "spiffe://cluster.local/ns/shop/sa/acme-inventory"
		_, _, err := call(clientFor(t, ca, orderID, Peer{SPIFFEID: inventory}), url)
		if err == nil || !strings.Contains(err.Error(), "the server is "+paymentID+", want "+inventory) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("the client checks the DNS name when asked", func(t *testing.T) {
		if _, _, err := call(clientFor(t, ca, orderID, Peer{DNSName: paymentDNS}), url); err != nil {
			t.Fatalf("right name refused: %v", err)
		}
		_, _, err := call(clientFor(t, ca, orderID, Peer{DNSName: "acme-inventory.shop.svc"}), url)
		if err == nil || !strings.Contains(err.Error(), "the server is not acme-inventory.shop.svc") {
			t.Fatalf("got %v", err)
		}
		_, _, err = call(clientFor(t, ca, orderID, Peer{SPIFFEID: paymentID, DNSName: "acme-inventory.shop.svc"}), url)
		if err == nil {
			t.Fatal("both given: a wrong DNS name was let through by a right SPIFFE ID")
		}
	})
	t.Run("the client refuses a callee from another CA", func(t *testing.T) {
		rogue := mtlstest.NewCA(t, "rogue CA")
		rogueURL, _, _ := internalServer(t, rogue, orderID)
		_, _, err := call(clientFor(t, ca, orderID, Peer{SPIFFEID: paymentID}), rogueURL)
		if err == nil || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a client must name its peer", func(t *testing.T) {
		src, _ := loadSource(t, mtlstest.Files(ca.Issue(t, orderID, nil), ca))
		if _, err := src.ClientTLS(Peer{}); err == nil {
			t.Fatal("accepted an unnamed peer")
		}
		if _, err := src.ClientTLS(Peer{SPIFFEID: "payment"}); err == nil {
			t.Fatal("accepted a malformed SPIFFE ID")
		}
	})
	t.Run("an empty allow-list denies everyone", func(t *testing.T) {
		closed, _, _ := internalServer(t, ca)
		resp, _, err := call(clientFor(t, ca, orderID, Peer{SPIFFEID: paymentID}), closed)
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v %v", err, resp)
		}
	})
}

func TestRequireCallerWithoutVerifiedChain(t *testing.T) {
	authorize, err := RequireCaller([]string{orderID})
	if err != nil {
		t.Fatal(err)
	}
	// A listener that only requests certificates leaves VerifiedChains empty:
	// the middleware must not trust PeerCertificates alone.
	ca := mtlstest.NewCA(t, "shop CA")
	src, _ := loadSource(t, mtlstest.Files(ca.Issue(t, paymentID, []string{paymentDNS}), ca))
	conf := src.ServerTLS()
	conf.ClientAuth = tls.RequestClientCert
	url := serve(t, conf, authorize(whoAmI))
	rogue := mtlstest.NewCA(t, "rogue").Issue(t, orderID, nil)
	cert, _ := tls.X509KeyPair(rogue.CertPEM, rogue.KeyPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	resp, _, err := call(&tls.Config{RootCAs: pool, ServerName: paymentDNS, GetClientCertificate: always(cert)}, url)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%v %v", err, resp)
	}
	if _, err := RequireCaller([]string{"order"}); err == nil {
		t.Fatal("a malformed allow-list was accepted")
	}
}

func TestPublicListener(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	src, _ := loadSource(t, mtlstest.Files(ca.Issue(t, paymentID, []string{paymentDNS}), ca))
	url := serve(t, src.ServerTLS(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)

	t.Run("no client certificate needed", func(t *testing.T) {
		resp, _, err := call(&tls.Config{RootCAs: pool, ServerName: paymentDNS}, url)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", err, resp)
		}
	})
	t.Run("TLS 1.2 is accepted", func(t *testing.T) {
		resp, _, err := call(&tls.Config{RootCAs: pool, ServerName: paymentDNS, MaxVersion: tls.VersionTLS12}, url)
		if err != nil || resp.TLS.Version != tls.VersionTLS12 {
			t.Fatalf("%v %v", err, resp)
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		_, _, err := call(&tls.Config{RootCAs: pool, ServerName: paymentDNS, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, url)
		if err == nil {
			t.Fatal("TLS 1.1 accepted")
		}
	})
}

// always presents cert, even when it does not match the CAs the server asks
// for, as an attacker would.
func always(cert tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
}
