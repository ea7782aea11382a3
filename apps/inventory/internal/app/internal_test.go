package app_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestInternalListenerAdmitsOnlyTheOrderService(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "book", 1999, 2)
	body := map[string]any{"order_id": newOrderID(), "items": []any{item("book", 1)}}

	if res, err := send(s.anon, "POST", s.internal+"/v1/reservations", body); err == nil {
		t.Fatalf("without a client certificate: got %d, want a failed handshake", res.Status)
	}
	res := do(t, s.payment, "POST", s.internal+"/v1/reservations", body)
	if res.Status != http.StatusForbidden {
		t.Fatalf("as payment: %d %s, want 403", res.Status, res.Raw)
	}
	if n := s.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations stored by refused callers", n)
	}
	res = do(t, s.order, "POST", s.internal+"/v1/reservations", body)
	if res.Status != http.StatusCreated {
		t.Fatalf("as order: %d %s, want 201", res.Status, res.Raw)
	}
	res = do(t, s.order, "POST", s.internal+"/v1/reservations/"+res.Body["id"].(string)+"/commit", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("commit as order: %d %s, want 200", res.Status, res.Raw)
	}
	// The reservations are not on the public listener at all.
	if res := do(t, s.anon, "POST", s.public+"/v1/reservations", body); res.Status != http.StatusNotFound {
		t.Fatalf("public POST /v1/reservations: %d, want 404", res.Status)
	}
}

func TestReservationsRefuseBadInput(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "book", 1999, 2)
	order := newOrderID()
	tests := map[string]struct {
		body   string
		header []string
		status int
		field  string
	}{
		"malformed JSON":       {body: `{"order_id":`, status: 400},
		"unknown field":        {body: `{"order_id":"` + order + `","items":[{"sku":"book","quantity":1}],"coupon":"x"}`, status: 400, field: "coupon"},
		"unknown item field":   {body: `{"order_id":"` + order + `","items":[{"sku":"book","quantity":1,"price_cents":1}]}`, status: 400, field: "price_cents"},
		"order id not a UUID":  {body: `{"order_id":"42","items":[{"sku":"book","quantity":1}]}`, status: 400, field: "order_id"},
		"no items":             {body: `{"order_id":"` + order + `","items":[]}`, status: 400, field: "items"},
		"zero quantity":        {body: `{"order_id":"` + order + `","items":[{"sku":"book","quantity":0}]}`, status: 400, field: "items[0].quantity"},
		"negative quantity":    {body: `{"order_id":"` + order + `","items":[{"sku":"book","quantity":-3}]}`, status: 400, field: "items[0].quantity"},
		"SQL in the sku":       {body: `{"order_id":"` + order + `","items":[{"sku":"book' OR '1'='1","quantity":1}]}`, status: 400, field: "items[0].sku"},
		"negative TTL":         {body: `{"order_id":"` + order + `","items":[{"sku":"book","quantity":1}],"ttl_seconds":-1}`, status: 400, field: "ttl_seconds"},
		"key is not the order": {body: `{"order_id":"` + order + `","items":[{"sku":"book","quantity":1}]}`, header: []string{"Idempotency-Key", "other"}, status: 400, field: "Idempotency-Key"},
		"oversized":            {body: `{"order_id":"` + order + `","items":[` + strings.Repeat(`{"sku":"book","quantity":1},`, 50_000) + `{"sku":"book","quantity":1}]}`, status: 413},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := do(t, s.order, "POST", s.internal+"/v1/reservations", tc.body, tc.header...)
			if res.Status != tc.status || res.errorField() != tc.field {
				t.Fatalf("got %d field %q (%s), want %d field %q", res.Status, res.errorField(), res.Raw, tc.status, tc.field)
			}
		})
	}
	if res := do(t, s.order, "POST", s.internal+"/v1/reservations/1'%3B--/commit", nil); res.Status != http.StatusBadRequest {
		t.Fatalf("commit with SQL in the id: %d %s, want 400", res.Status, res.Raw)
	}
	if n := s.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations stored by refused requests", n)
	}
	if _, reserved := s.stock(t, "book"); reserved != 0 {
		t.Fatalf("%d reserved by refused requests", reserved)
	}
}
