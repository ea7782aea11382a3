//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Shapes of the services' answers (apps/API.md).
type (
	productJSON struct {
		SKU        string `json:"sku"`
		Name       string `json:"name"`
		PriceCents int64  `json:"price_cents"`
		Currency   string `json:"currency"`
		Available  int64  `json:"available"`
	}
	userJSON struct {
		ID    string   `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	orderJSON struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Items  []struct {
			SKU      string `json:"sku"`
			Quantity int    `json:"quantity"`
		} `json:"items"`
		TotalCents int64  `json:"total_cents"`
		Currency   string `json:"currency"`
		PaymentID  string `json:"payment_id"`
		CustomerID string `json:"customer_id"`
	}
	paymentJSON struct {
		ID          string `json:"id"`
		OrderID     string `json:"order_id"`
		Status      string `json:"status"`
		AmountCents int64  `json:"amount_cents"`
		Currency    string `json:"currency"`
		CardLast4   string `json:"card_last4"`
	}
)

const (
	journeyStock = 100
	journeyPrice = 1999
	journeyQty   = 3
)

// checkJourney runs a customer journey from the gateway's probe pod through
// the services' real Services, with TLS verified against the Shop's CA: the
// admin (credentials from the admin Secret) creates a product with stock, a
// customer registers, gets a token and orders. Then the order is confirmed,
// the stock went down by the quantity, and payment (asked by a pod with
// order's identity, the only caller its internal port admits) holds one
// captured charge of the order's total for that order.
func (s *suite) checkJourney(t *testing.T, ctx context.Context) {
	s.need(t, stageReady, stageProbes)
	s.sku = "e2e-widget-" + randomHex(4)
	s.customerEmail = "e2e-" + randomHex(4) + "@example.com"
	s.customerPassword = "correct horse " + randomHex(8)
	var res journeyResult
	if !s.mustProbe(t, ctx, probeGateway, 3*time.Minute, &res, "journey", "-ca", caFile, "-admin-dir", adminDir,
		"-user", s.publicURL(shopv1.ServiceUser), "-order", s.publicURL(shopv1.ServiceOrder), "-inventory", s.publicURL(shopv1.ServiceInventory),
		"-sku", s.sku, "-stock", itoa(journeyStock), "-price", itoa(journeyPrice), "-qty", itoa(journeyQty),
		"-email", s.customerEmail, "-password", s.customerPassword) {
		return
	}
	steps := map[string]step{}
	for _, st := range res.Steps {
		steps[st.Name] = st
		t.Logf("  %s", st)
	}
	if res.FailedAt != "" {
		t.Fatalf("FAIL: the journey stopped at %s: %s", res.FailedAt, steps[res.FailedAt])
	}
	decode := func(name string, v any) bool {
		if err := json.Unmarshal(steps[name].Body, v); err != nil {
			t.Errorf("FAIL: %s answered something that is not the documented JSON: %v: %s", name, err, steps[name])
			return false
		}
		return true
	}
	ok := true
	check := func(cond bool, format string, args ...any) {
		if !cond {
			ok = false
			t.Errorf("FAIL: "+format, args...)
		}
	}

	var before, after productJSON
	if decode("product_before", &before) {
		check(before.SKU == s.sku && before.Available == journeyStock && before.PriceCents == journeyPrice,
			"the admin's product reads back as %+v, want sku %s, %d available at %d cents", before, s.sku, journeyStock, journeyPrice)
	}
	var u userJSON
	if decode("register", &u) {
		check(u.ID != "" && u.Email == s.customerEmail && len(u.Roles) == 1 && u.Roles[0] == "customer",
			"registration answered %+v, want the email and the customer role", u)
	}
	var o, retry, got orderJSON
	if decode("order", &o) {
		check(o.Status == "confirmed", "order status %q, want confirmed", o.Status)
		check(o.PaymentID != "", "the confirmed order has no payment_id")
		check(o.TotalCents == journeyQty*journeyPrice && o.Currency == "EUR",
			"order total %d %s, want %d EUR", o.TotalCents, o.Currency, journeyQty*journeyPrice)
		check(len(o.Items) == 1 && o.Items[0].SKU == s.sku && o.Items[0].Quantity == journeyQty, "order items %+v", o.Items)
		check(o.CustomerID == u.ID, "order customer_id %q, want the registered user %q", o.CustomerID, u.ID)
	}
	if decode("order_retry", &retry) {
		check(retry.ID == o.ID && retry.PaymentID == o.PaymentID,
			"the same Idempotency-Key and body gave order %s (payment %s), want the first one %s (payment %s)", retry.ID, retry.PaymentID, o.ID, o.PaymentID)
	}
	if decode("order_get", &got) {
		check(got.ID == o.ID && got.Status == "confirmed" && got.PaymentID == o.PaymentID,
			"GET /v1/orders/%s answered %+v", o.ID, got)
	}
	var list struct {
		Items []orderJSON `json:"items"`
	}
	if decode("orders_list", &list) {
		check(len(list.Items) == 1 && list.Items[0].ID == o.ID, "the customer's order list is %+v, want only %s", list.Items, o.ID)
	}
	if decode("product_after", &after) {
		check(after.Available == before.Available-journeyQty,
			"stock after the order is %d, want %d - %d = %d", after.Available, before.Available, journeyQty, before.Available-journeyQty)
	}
	if !ok || o.PaymentID == "" {
		return
	}
	t.Logf("PASS: order %s confirmed, %d cents, stock %d -> %d", o.ID, o.TotalCents, before.Available, after.Available)
	s.pass(stageJourney)

	// payment's own record of the charge, from a pod with order's identity
	// (its labels for the NetworkPolicy, its certificate for mTLS).
	t.Run("payment_recorded", func(t *testing.T) {
		pay := s.internalURL(shopv1.ServicePayment)
		var byID httpResult
		if !s.mustProbe(t, ctx, probeOrderOwn, time.Minute, &byID, "http", "-ca", clientDir+"/ca.crt",
			"-cert", clientDir+"/tls.crt", "-key", clientDir+"/tls.key", "-attempts", "5", "-want-status", "200",
			pay+"/v1/payments/"+url.PathEscape(o.PaymentID)) {
			return
		}
		var p paymentJSON
		if byID.Status != 200 || json.Unmarshal([]byte(byID.Body), &p) != nil {
			t.Fatalf("FAIL: GET /v1/payments/%s on payment: %s", o.PaymentID, byID)
		}
		if p.ID != o.PaymentID || p.OrderID != o.ID || p.Status != "captured" || p.AmountCents != o.TotalCents ||
			p.Currency != o.Currency || p.CardLast4 != "4242" {
			t.Errorf("FAIL: payment %+v, want a captured charge of %d %s for order %s, card ending 4242", p, o.TotalCents, o.Currency, o.ID)
		}
		var byOrder httpResult
		if !s.mustProbe(t, ctx, probeOrderOwn, time.Minute, &byOrder, "http", "-ca", clientDir+"/ca.crt",
			"-cert", clientDir+"/tls.crt", "-key", clientDir+"/tls.key", pay+"/v1/payments?order_id="+url.QueryEscape(o.ID)) {
			return
		}
		var list struct {
			Items []paymentJSON `json:"items"`
		}
		if byOrder.Status != 200 || json.Unmarshal([]byte(byOrder.Body), &list) != nil {
			t.Fatalf("FAIL: GET /v1/payments?order_id=%s: %s", o.ID, byOrder)
		}
		if len(list.Items) != 1 || list.Items[0].ID != o.PaymentID {
			t.Errorf("FAIL: order %s has payments %+v, want exactly the one charge %s (no double charge)", o.ID, list.Items, o.PaymentID)
			return
		}
		t.Logf("PASS: payment %s captured %d %s for order %s, and it is the order's only charge (%s)",
			p.ID, p.AmountCents, p.Currency, o.ID, builder.SPIFFEID(s.shop, builder.ServiceAccountName(s.shop, shopv1.ServiceOrder)))
	})
}
