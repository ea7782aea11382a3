package app_test

import (
	"context"
	"net/http"
	"testing"
)

func TestCatalogReadsAreServedFromTheCacheUntilAWrite(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "mug-1", 1250, 7)

	got := do(t, s.anon, "GET", s.public+"/v1/products/mug-1", nil)
	want := map[string]any{"sku": "mug-1", "name": "Product mug-1", "price_cents": 1250.0, "currency": "EUR", "available": 7.0}
	assertBody(t, got, http.StatusOK, want)
	if list := do(t, s.anon, "GET", s.public+"/v1/products", nil); len(list.Body["items"].([]any)) != 1 {
		t.Fatalf("GET /v1/products: %s", list.Raw)
	}

	// Change the row behind the service's back: the cache still answers.
	if _, err := s.db.Exec(context.Background(), `UPDATE products SET name = 'changed in the database', on_hand = 99 WHERE sku = 'mug-1'`); err != nil {
		t.Fatal(err)
	}
	assertBody(t, do(t, s.anon, "GET", s.public+"/v1/products/mug-1", nil), http.StatusOK, want)
	list := do(t, s.anon, "GET", s.public+"/v1/products", nil)
	if items := list.Body["items"].([]any); items[0].(map[string]any)["name"] != "Product mug-1" {
		t.Fatalf("the list was not served from the cache: %s", list.Raw)
	}

	// A write through the API invalidates every cached entry.
	s.putProduct(t, "mug-1", 1500, 3)
	want = map[string]any{"sku": "mug-1", "name": "Product mug-1", "price_cents": 1500.0, "currency": "EUR", "available": 3.0}
	assertBody(t, do(t, s.anon, "GET", s.public+"/v1/products/mug-1", nil), http.StatusOK, want)
	list = do(t, s.anon, "GET", s.public+"/v1/products", nil)
	if items := list.Body["items"].([]any); items[0].(map[string]any)["price_cents"] != 1500.0 {
		t.Fatalf("the list is stale after PUT: %s", list.Raw)
	}
}

func TestCatalogWritesNeedTheAdminRole(t *testing.T) {
	s := startService(t)
	body := map[string]any{"name": "Mug", "price_cents": 100, "currency": "EUR", "stock": 1}

	customer := "Bearer " + s.issuer.Token(t, "user-1", "customer")
	res := do(t, s.anon, "PUT", s.public+"/v1/products/mug-1", body, "Authorization", customer)
	if res.Status != http.StatusForbidden || res.errorCode() != "forbidden" {
		t.Fatalf("customer PUT: %d %s, want 403 forbidden", res.Status, res.Raw)
	}
	res = do(t, s.anon, "PUT", s.public+"/v1/products/mug-1", body)
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous PUT: %d %s, want 401", res.Status, res.Raw)
	}
	if n := s.count(t, `SELECT count(*) FROM products`); n != 0 {
		t.Fatalf("%d products stored by refused requests", n)
	}
	if res := do(t, s.anon, "GET", s.public+"/v1/products/mug-1", nil); res.Status != http.StatusNotFound {
		t.Fatalf("GET unknown product: %d %s, want 404", res.Status, res.Raw)
	}
}

func TestCatalogReadsSurviveARedisOutage(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "mug-1", 1250, 7)
	do(t, s.anon, "GET", s.public+"/v1/products/mug-1", nil) // cached

	s.redis.Servers[0].Stop()
	// The write reaches the database; the invalidation cannot reach Redis.
	s.putProduct(t, "mug-1", 990, 5)
	for _, path := range []string{"/v1/products/mug-1", "/v1/products"} {
		res := do(t, s.anon, "GET", s.public+path, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s with Redis down: %d %s", path, res.Status, res.Raw)
		}
	}
	assertBody(t, do(t, s.anon, "GET", s.public+"/v1/products/mug-1", nil), http.StatusOK,
		map[string]any{"sku": "mug-1", "name": "Product mug-1", "price_cents": 990.0, "currency": "EUR", "available": 5.0})
}

func TestCatalogRefusesBadInput(t *testing.T) {
	s := startService(t)
	admin := s.adminToken(t)
	valid := `{"name":"Mug","price_cents":100,"currency":"EUR","stock":1}`
	tests := map[string]struct {
		path, body, contentType string
		status                  int
		field                   string
	}{
		"malformed JSON":         {"/v1/products/mug-1", `{"name":`, "application/json", 400, ""},
		"unknown field":          {"/v1/products/mug-1", `{"name":"Mug","price_cents":100,"currency":"EUR","stock":1,"discount":5}`, "application/json", 400, "discount"},
		"missing price":          {"/v1/products/mug-1", `{"name":"Mug","currency":"EUR","stock":1}`, "application/json", 400, "price_cents"},
		"negative stock":         {"/v1/products/mug-1", `{"name":"Mug","price_cents":100,"currency":"EUR","stock":-1}`, "application/json", 400, "stock"},
		"float price":            {"/v1/products/mug-1", `{"name":"Mug","price_cents":1.5,"currency":"EUR","stock":1}`, "application/json", 400, "price_cents"},
		"lowercase currency":     {"/v1/products/mug-1", `{"name":"Mug","price_cents":100,"currency":"eur","stock":1}`, "application/json", 400, "currency"},
		"not JSON":               {"/v1/products/mug-1", valid, "text/plain", 415, ""},
		"SQL in the sku":         {"/v1/products/x';DROP%20TABLE%20products;--", valid, "application/json", 400, "sku"},
		"quote in the sku":       {"/v1/products/mug%27", valid, "application/json", 400, "sku"},
		"too long a sku":         {"/v1/products/" + string(make65('a')), valid, "application/json", 400, "sku"},
		"oversized body":         {"/v1/products/mug-1", `{"name":"` + string(make65('a')) + string(oversized()) + `"}`, "application/json", 413, ""},
		"control chars in names": {"/v1/products/mug-1", `{"name":"Mu\u0000g","price_cents":100,"currency":"EUR","stock":1}`, "application/json", 400, "name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest("PUT", s.public+tc.path, stringsReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Authorization", admin)
			res := doRequest(t, s.anon, req)
			if res.Status != tc.status || res.errorField() != tc.field {
				t.Fatalf("got %d field %q (%s), want %d field %q", res.Status, res.errorField(), res.Raw, tc.status, tc.field)
			}
		})
	}
	if n := s.count(t, `SELECT count(*) FROM products`); n != 0 {
		t.Fatalf("%d products stored by refused requests", n)
	}
	if res := do(t, s.anon, "GET", s.public+"/v1/products/x';--", nil); res.Status != http.StatusBadRequest {
		t.Fatalf("GET with SQL in the sku: %d %s, want 400", res.Status, res.Raw)
	}
}
