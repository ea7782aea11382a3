package system

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// TestBadInput sends each public write endpoint (and the reads that take a
// path parameter) malformed JSON, an oversized body, unknown fields and SQL
// metacharacters: each gets a 4xx with a JSON error and nothing is stored.
func TestBadInput(t *testing.T) {
	admin := adminToken(t)
	buyer := mintedCustomer(t)
	sku := newSKU("input")
	putProduct(t, sku, 300, 4)

	stored := func() map[string]int {
		return map[string]int{
			"users":    queryInt(t, stack.User, `SELECT count(*) FROM users`),
			"products": queryInt(t, stack.Inventory, `SELECT count(*) FROM products`),
			"reserved": queryInt(t, stack.Inventory, `SELECT count(*) FROM reservations`),
			"orders":   queryInt(t, stack.Order, `SELECT count(*) FROM orders`),
			"payments": queryInt(t, stack.Payment, `SELECT count(*) FROM payments`),
		}
	}
	before := stored()

	huge := `{"email":"big@example.com","password":"` + strings.Repeat("x", 2<<20) + `"}`
	hugeOrder := `{"items":[` + strings.Repeat(`{"sku":"`+sku+`","quantity":1},`, 60000) + `{"sku":"` + sku + `","quantity":1}],"card":{}}`
	order := func(body any) request {
		return request{Method: "POST", URL: orderURL() + "/v1/orders", Token: buyer, Body: body, Header: map[string]string{"Idempotency-Key": newUUID()}}
	}
	putSKU := func(s string, body any) request {
		return request{Method: "PUT", URL: inventoryURL() + "/v1/products/" + url.PathEscape(s), Token: admin, Body: body}
	}
	goodProduct := map[string]any{"name": "n", "price_cents": 1, "currency": "EUR", "stock": 1}
	injection := "x'; DROP TABLE products; --"

	for _, tc := range []struct {
		name string
		req  request
		want []int
	}{
		{"register: malformed JSON", request{Method: "POST", URL: userURL() + "/v1/users", Body: `{"email": "a@example.com",`}, []int{400}},
		{"register: oversized", request{Method: "POST", URL: userURL() + "/v1/users", Body: huge}, []int{413}},
		{"register: unknown field", request{Method: "POST", URL: userURL() + "/v1/users", Body: map[string]any{"email": "u@example.com", "password": "a long enough password", "roles": []string{"admin"}}}, []int{400}},
		{"register: SQL in the email", request{Method: "POST", URL: userURL() + "/v1/users", Body: map[string]any{"email": "a'); DELETE FROM users; --", "password": "a long enough password"}}, []int{400, 422}},
		{"register: not JSON", request{Method: "POST", URL: userURL() + "/v1/users", Body: "email=a@example.com", ContentType: "text/plain"}, []int{400, 415}},
		{"token: SQL in the username", request{Method: "POST", URL: userURL() + "/v1/auth/token", ContentType: "application/x-www-form-urlencoded",
			Body: url.Values{"grant_type": {"password"}, "username": {"admin' OR '1'='1"}, "password": {"' OR '1'='1"}}.Encode()}, []int{401}},
		{"token: malformed form", request{Method: "POST", URL: userURL() + "/v1/auth/token", ContentType: "application/x-www-form-urlencoded", Body: "grant_type=%zz"}, []int{400}},
		{"token: oversized", request{Method: "POST", URL: userURL() + "/v1/auth/token", ContentType: "application/x-www-form-urlencoded", Body: "grant_type=password&username=" + strings.Repeat("a", 2<<20)}, []int{400, 413}},
		{"product: malformed JSON", putSKU(newSKU("bad"), `{"name": "x", "price_cents": }`), []int{400}},
		{"product: oversized", putSKU(newSKU("bad"), `{"name":"`+strings.Repeat("y", 2<<20)+`"}`), []int{413}},
		{"product: unknown field", putSKU(newSKU("bad"), map[string]any{"name": "n", "price_cents": 1, "currency": "EUR", "stock": 1, "reserved": -5}), []int{400}},
		{"product: SQL in the SKU", putSKU(injection, goodProduct), []int{400, 404}},
		{"product: SQL in the name", putSKU(newSKU("bad"), map[string]any{"name": injection + strings.Repeat("z", 300), "price_cents": 1, "currency": "EUR", "stock": 1}), []int{400, 422}},
		{"product: negative stock", putSKU(newSKU("bad"), map[string]any{"name": "n", "price_cents": 1, "currency": "EUR", "stock": -1}), []int{400, 422}},
		{"product read: SQL in the SKU", request{Method: "GET", URL: inventoryURL() + "/v1/products/" + url.PathEscape(injection)}, []int{400, 404}},
		{"order: malformed JSON", order(`{"items": [{"sku": "` + sku + `", "quantity": 1}`), []int{400}},
		{"order: oversized", order(hugeOrder), []int{413}},
		{"order: unknown field", order(map[string]any{"items": []item{{SKU: sku, Quantity: 1}}, "card": card(cardApproved), "total_cents": 1}), []int{400}},
		{"order: unknown card field", order(map[string]any{"items": []item{{SKU: sku, Quantity: 1}}, "card": with(card(cardApproved), "pin", "0000")}), []int{400}},
		{"order: SQL in the SKU", order(map[string]any{"items": []item{{SKU: injection, Quantity: 1}}, "card": card(cardApproved)}), []int{400, 404, 409, 422}},
		{"order: zero quantity", order(map[string]any{"items": []item{{SKU: sku, Quantity: 0}}, "card": card(cardApproved)}), []int{400, 422}},
		{"order: no idempotency key", request{Method: "POST", URL: orderURL() + "/v1/orders", Token: buyer, Body: map[string]any{"items": []item{{SKU: sku, Quantity: 1}}, "card": card(cardApproved)}}, []int{400}},
		{"order read: SQL in the id", request{Method: "GET", URL: orderURL() + "/v1/orders/" + url.PathEscape("1' OR '1'='1"), Token: buyer}, []int{400, 404}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, tc.req)
			ok := false
			for _, w := range tc.want {
				ok = ok || res.Status == w
			}
			if !ok {
				t.Errorf("%.300s, want one of %v", res, tc.want)
			}
			if res.Status != http.StatusNotFound && res.errorCode() == "" {
				t.Errorf("no JSON error code in %.300s", res)
			}
		})
	}

	after := stored()
	for k, n := range before {
		if after[k] != n {
			t.Errorf("%s: %d rows before, %d after", k, n, after[k])
		}
	}
	if got := getProduct(t, sku).Available; got != 4 {
		t.Errorf("available = %d, want 4", got)
	}
}
