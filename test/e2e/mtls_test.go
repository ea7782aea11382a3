//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
)

// checkMTLS checks payment's internal listener, which NetworkPolicy opens to
// pods labelled as order: the network lets all three probes through, so what
// tells them apart is mTLS. Without a client certificate the TLS session is
// refused; with a valid certificate of another service (inventory's, issued
// by the same CA with its own SPIFFE ID) the request gets 403; with order's
// own certificate it is served.
func (s *suite) checkMTLS(t *testing.T, ctx context.Context) {
	s.need(t, stageReady, stageProbes)
	// Any order id: the answer is an empty list for the allowed caller.
	url := s.internalURL(shopv1.ServicePayment) + "/v1/payments?order_id=00000000-0000-4000-8000-000000000000"
	request := func(t *testing.T, role string, args ...string) (httpResult, bool) {
		var res httpResult
		args = append(append([]string{"http"}, args...), "-attempts", "3", url)
		ok := s.mustProbe(t, ctx, role, time.Minute, &res, args...)
		return res, ok
	}

	t.Run("no_client_certificate_refused_at_tls", func(t *testing.T) {
		res, ok := request(t, probeOrderNoTLS, "-ca", caFile)
		if !ok {
			return
		}
		// Go's TLS 1.3 server sends "certificate required" when the client
		// sends none; "bad certificate" and "handshake failure" are what
		// TLS 1.2 servers send. Any other alert is not this refusal.
		if res.Status != 0 || !slices.Contains([]string{"certificate required", "bad certificate", "handshake failure"}, res.TLSAlert) {
			t.Errorf("FAIL: without a client certificate: %s; want no HTTP answer and the TLS session refused with the alert "+
				"\"certificate required\" (or \"bad certificate\", \"handshake failure\")", res)
			return
		}
		t.Logf("PASS: no client certificate: TLS alert %q, no HTTP answer", res.TLSAlert)
	})

	t.Run("wrong_identity_forbidden", func(t *testing.T) {
		res, ok := request(t, probeOrderWrong, "-ca", clientDir+"/ca.crt", "-cert", clientDir+"/tls.crt", "-key", clientDir+"/tls.key")
		if !ok {
			return
		}
		inventoryID := builder.SPIFFEID(s.shop, builder.ServiceAccountName(s.shop, shopv1.ServiceInventory))
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if res.Status != 403 || json.Unmarshal([]byte(res.Body), &body) != nil || body.Error.Code != "forbidden" {
			t.Errorf("FAIL: inventory's certificate (%s) got %s; want 403 forbidden", inventoryID, res)
			return
		}
		if !strings.Contains(body.Error.Message, inventoryID) {
			t.Logf("note: the 403 message does not name the caller %s: %q", inventoryID, body.Error.Message)
		}
		t.Logf("PASS: inventory's valid certificate is refused: 403 %q", body.Error.Message)
	})

	t.Run("order_identity_allowed", func(t *testing.T) {
		res, ok := request(t, probeOrderOwn, "-ca", clientDir+"/ca.crt", "-cert", clientDir+"/tls.crt", "-key", clientDir+"/tls.key")
		if !ok {
			return
		}
		if res.Status != 200 {
			t.Errorf("FAIL: order's own certificate got %s; want 200", res)
			return
		}
		t.Logf("PASS: order's certificate is served: 200 %s", strings.TrimSpace(res.Body))
	})
}
