package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
)

// ServerTLS is the config of the public listener: TLS 1.2 or later (gateways
// and browsers still speak 1.2), the current certificate, no client
// certificate.
func (s *Source) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.snapshot().cert, nil
		},
	}
}

// MutualTLS is the config of the internal listener: TLS 1.3 (only our own
// services call it), and a client certificate is required and must chain to
// the current ca.crt, so a caller without one fails the handshake. Which
// callers are allowed is decided per request by RequireCaller, so a known
// but unauthorised caller gets a readable 403 instead of a TLS alert.
func (s *Source) MutualTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Each handshake gets the config of the current files, so renewed
		// certificates and CA bundles apply to new connections at once.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.snapshot().mutual, nil
		},
	}
}

// Peer is who a client expects at the other end: its SPIFFE ID, its DNS
// name, or both (then both must match).
type Peer struct {
	SPIFFEID string // e.g. spiffe://cluster.local/ns/shop/sa/acme-payment
	DNSName  string // e.g. acme-payment.shop.svc
}

// ClientTLS is the config for calling another service: it presents the
// current certificate, verifies the callee against the current ca.crt, and
// refuses a callee that is not peer.
func (s *Source) ClientTLS(peer Peer) (*tls.Config, error) {
	var want ID
	switch {
	case peer.SPIFFEID == "" && peer.DNSName == "":
		return nil, errors.New("mtls: a client must name the peer it expects (SPIFFE ID or DNS name)")
	case peer.SPIFFEID != "":
		id, err := ParseID(peer.SPIFFEID)
		if err != nil {
			return nil, err
		}
		want = id
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.snapshot().cert, nil
		},
		// Go's built-in verification would pin the CA bundle for the life of
		// the config and know nothing of SPIFFE IDs; VerifyConnection does
		// the complete check against the current bundle instead, on every
		// connection, resumed ones included.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyPeer(cs, want, peer.DNSName)
		},
	}, nil
}

// verifyPeer checks the callee's chain, then its identity.
func (s *Source) verifyPeer(cs tls.ConnectionState, want ID, dnsName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("mtls: the server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: s.snapshot().roots, Intermediates: inter, CurrentTime: s.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("mtls: the server certificate is not trusted: %w", err)
	}
	if !want.IsZero() {
		got, err := IDFromCertificate(leaf)
		if err != nil {
			return fmt.Errorf("mtls: want server %s: %w", want, err)
		}
		if got != want {
			return fmt.Errorf("mtls: the server is %s, want %s", got, want)
		}
	}
	if dnsName != "" {
		if err := leaf.VerifyHostname(dnsName); err != nil {
			return fmt.Errorf("mtls: the server is not %s (its names: %v)", dnsName, leaf.DNSNames)
		}
	}
	return nil
}

// PeerForURL expects the callee to hold a certificate for the host of
// rawURL, e.g. acme-payment.shop.svc from SHOPSTACK_PAYMENT_URL: the
// operator's service certificates carry their Service's DNS names.
func PeerForURL(rawURL string) (Peer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return Peer{}, fmt.Errorf("mtls: %q is not a URL with a host", rawURL)
	}
	return Peer{DNSName: u.Hostname()}, nil
}
