package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

func TestMiddleware(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	key := newTestKey(t, "k1")
	v, _ := verifierFor(t, clk, key)
	customer := es256(t, key, header{Kid: "k1"}, claimsAt(clk.now()))
	adminClaims := claimsAt(clk.now())
	adminClaims["roles"] = []string{"admin"}
	admin := es256(t, key, header{Kid: "k1"}, adminClaims)

	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		_ = httpx.WriteJSON(w, 200, map[string]string{"sub": c.Subject})
	})
	serve := func(h http.Handler, authorization string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/users/me", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	errorOf := func(t *testing.T, rec *httptest.ResponseRecorder) httpx.ErrorDetail {
		t.Helper()
		var body httpx.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("not a JSON error: %q", rec.Body.String())
		}
		return body.Error
	}

	t.Run("a valid bearer token reaches the handler with its claims", func(t *testing.T) {
		rec := serve(v.Require(me), "Bearer "+customer)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"sub":"user-1"`) {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		if rec := serve(v.Require(me), "bearer "+customer); rec.Code != 200 {
			t.Fatal("the scheme is case-insensitive (RFC 7235)")
		}
	})
	for name, authorization := range map[string]string{
		"no header":            "",
		"basic auth":           "Basic dXNlcjpwYXNz",
		"empty bearer":         "Bearer ",
		"not a token":          "Bearer nope",
		"expired":              "Bearer " + es256(t, key, header{Kid: "k1"}, map[string]any{"iss": issuer, "aud": aud, "sub": "u", "exp": clk.now().Add(-time.Hour).Unix()}),
		"token without scheme": customer,
	} {
		t.Run("401: "+name, func(t *testing.T) {
			rec := serve(v.Require(me), authorization)
			if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("%d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
			if e := errorOf(t, rec); e.Code != "unauthorized" || (!strings.HasPrefix(e.Message, "invalid token") && !strings.Contains(e.Message, "Bearer token is required")) {
				t.Fatalf("%+v", e)
			}
		})
	}
	t.Run("a missing token is named as such", func(t *testing.T) {
		if e := errorOf(t, serve(v.Require(me), "")); e.Message != "an Authorization: Bearer token is required" {
			t.Fatalf("%+v", e)
		}
	})
	t.Run("the 401 says why, without echoing the token", func(t *testing.T) {
		rec := serve(v.Require(me), "Bearer "+es256(t, key, header{Kid: "k1"}, map[string]any{"iss": issuer, "aud": aud, "sub": "u", "exp": clk.now().Add(-time.Hour).Unix()}))
		if e := errorOf(t, rec); e.Message != "invalid token: expired" {
			t.Fatalf("%+v", e)
		}
	})
	t.Run("a role is required", func(t *testing.T) {
		h := v.Require(RequireRole("admin")(me))
		if rec := serve(h, "Bearer "+admin); rec.Code != 200 {
			t.Fatalf("admin: %d", rec.Code)
		}
		rec := serve(h, "Bearer "+customer)
		if e := errorOf(t, rec); rec.Code != 403 || e.Code != "forbidden" || !strings.Contains(e.Message, `"admin"`) {
			t.Fatalf("customer: %d %+v", rec.Code, e)
		}
	})
	t.Run("a role check without verified claims is a 401", func(t *testing.T) {
		if rec := serve(RequireRole("admin")(me), "Bearer "+admin); rec.Code != 401 {
			t.Fatalf("%d", rec.Code)
		}
	})
}
