package mtls

import (
	"crypto/x509"
	"net/url"
	"testing"
)

func TestParseID(t *testing.T) {
	valid := map[string]ID{
		"spiffe://cluster.local/ns/shop/sa/acme-order": {TrustDomain: "cluster.local", Path: "/ns/shop/sa/acme-order"},
		"spiffe://example.org/workload":                {TrustDomain: "example.org", Path: "/workload"},
	}
	for in, want := range valid {
		t.Run(in, func(t *testing.T) {
			got, err := ParseID(in)
			if err != nil || got != want || got.String() != in {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
	for _, in := range []string{
		"", "https://cluster.local/ns/a/sa/b", "spiffe:///ns/a", "spiffe://cluster.local", "spiffe://cluster.local/",
		"spiffe://cluster.local/ns/a/", "spiffe://Cluster.Local/ns/a", "spiffe://cluster.local:8443/ns/a",
		"spiffe://user@cluster.local/ns/a", "spiffe://cluster.local/ns/a?x=1", "spiffe://cluster.local/ns/a#f",
		"spiffe://cluster.local/ns//sa", "spiffe://cluster.local/ns/../sa", "spiffe://cluster.local/./ns",
	} {
		t.Run("invalid "+in, func(t *testing.T) {
			if id, err := ParseID(in); err == nil {
				t.Fatalf("accepted as %+v", id)
			}
		})
	}
}

func TestIDKubernetesParts(t *testing.T) {
	id := ServiceAccountID(trustDomain, "shop", "acme-order")
	if id.String() != orderID || id.Namespace() != "shop" || id.ServiceAccount() != "acme-order" {
		t.Fatalf("got %s %q %q", id, id.Namespace(), id.ServiceAccount())
	}
	other, _ := ParseID("spiffe://example.org/workload")
	if other.Namespace() != "" || other.ServiceAccount() != "" {
		t.Fatal("non-Kubernetes ID has Kubernetes parts")
	}
	if !(ID{}).IsZero() || (ID{}).String() != "" {
		t.Fatal("zero ID")
	}
}

func TestIDFromCertificate(t *testing.T) {
	uris := func(ss ...string) *x509.Certificate {
		c := &x509.Certificate{}
		for _, s := range ss {
			u, _ := url.Parse(s)
			c.URIs = append(c.URIs, u)
		}
		return c
	}
	t.Run("one SPIFFE ID among other URIs", func(t *testing.T) {
		id, err := IDFromCertificate(uris("https://example.org", orderID))
		if err != nil || id.String() != orderID {
			t.Fatalf("got %v, %v", id, err)
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, err := IDFromCertificate(uris("https://example.org")); err != ErrNoID {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("two are ambiguous", func(t *testing.T) {
		if _, err := IDFromCertificate(uris(orderID, paymentID)); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		if _, err := IDFromCertificate(uris("spiffe://cluster.local/")); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestSibling(t *testing.T) {
	self, _ := ParseID(orderID)
	if got := self.Sibling("acme-payment").String(); got != paymentID {
		t.Fatalf("got %s", got)
	}
}

func TestPeerForURL(t *testing.T) {
	p, err := PeerForURL("https://acme-payment.shop.svc:9443")
	if err != nil || p != (Peer{DNSName: "acme-payment.shop.svc"}) {
		t.Fatalf("got %+v, %v", p, err)
	}
	if _, err := PeerForURL("acme-payment"); err == nil {
		t.Fatal("accepted a URL without a host")
	}
}
