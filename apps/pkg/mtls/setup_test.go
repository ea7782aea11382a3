package mtls

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

func TestSetup(t *testing.T) {
	t.Run("istio: plain HTTP, nothing loaded, caller from the sidecar", func(t *testing.T) {
		s, err := NewSetup(config.MeshIstio, "/does/not/exist")
		if err != nil {
			t.Fatal(err)
		}
		client, err := s.ClientTLS(Peer{SPIFFEID: paymentID})
		if s.PublicTLS() != nil || s.InternalTLS() != nil || client != nil || err != nil || s.Source() != nil || s.Checks() != nil {
			t.Fatal("istio mode returned TLS configuration")
		}
		authorize, err := s.Authorize([]string{orderID})
		if err != nil {
			t.Fatal(err)
		}
		var seen ID
		h := authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = CallerFrom(r.Context()) }))
		req := httptest.NewRequest("GET", "/v1/payments", nil)
		req.Header.Set(XFCCHeader, `By=spiffe://cluster.local/ns/shop/sa/acme-payment;Hash=abc;Subject="";URI=`+orderID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || seen.String() != orderID {
			t.Fatalf("status %d, caller %q", rec.Code, seen)
		}
		if _, err := s.Authorize([]string{"order"}); err == nil {
			t.Fatal("a malformed allow-list was accepted under istio")
		}
	})
	t.Run("none: TLS everywhere", func(t *testing.T) {
		ca := mtlstest.NewCA(t, "shop CA")
		dir := mtlstest.NewSecretDir(t, mtlstest.Files(ca.Issue(t, paymentID, []string{paymentDNS}), ca))
		s, err := NewSetup(config.MeshNone, dir.Dir, WithLogger(discard))
		if err != nil {
			t.Fatal(err)
		}
		client, err := s.ClientTLS(Peer{SPIFFEID: orderID})
		if s.PublicTLS() == nil || s.InternalTLS() == nil || client == nil || err != nil || len(s.Checks()) != 1 {
			t.Fatal("mesh none lacks TLS configuration")
		}
		if s.Mesh() != config.MeshNone || s.Source().ID().String() != paymentID {
			t.Fatalf("mesh %q, id %s", s.Mesh(), s.Source().ID())
		}
		authorize, err := s.Authorize([]string{orderID})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(XFCCHeader, "URI="+orderID) // a forged header means nothing without a sidecar
		authorize(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("plain request let through: %d", rec.Code)
		}
	})
	t.Run("none: missing certificates fail at start", func(t *testing.T) {
		if _, err := NewSetup(config.MeshNone, t.TempDir(), WithLogger(discard)); err == nil {
			t.Fatal("started without certificates")
		}
	})
}

func TestParseXFCC(t *testing.T) {
	tests := map[string]string{
		"URI=" + orderID: orderID,
		`By=spiffe://cluster.local/ns/shop/sa/acme-payment;Hash=h;Subject="CN=a,O=b;c";URI=` + orderID: orderID,
		// Appended by two proxies: the last element is the nearest one's client.
		`By=x;URI=` + userID + `,By=y;URI=` + orderID: orderID,
		`uri="` + orderID + `"`:                       orderID,
		"":                                            "",
		"Hash=abc":                                    "",
		"URI=https://example.org/":                    "",
	}
	for header, want := range tests {
		t.Run(header, func(t *testing.T) {
			id, ok := parseXFCC(header)
			if id.String() != want || ok != (want != "") {
				t.Fatalf("got %q, %v; want %q", id, ok, want)
			}
		})
	}
}
