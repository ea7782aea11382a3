package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type orderRequest struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Items    []struct {
		Price int `json:"price"`
	} `json:"items"`
}

func TestDecodeJSON(t *testing.T) {
	tests := map[string]struct {
		contentType string
		body        string
		limit       int64
		wantStatus  int
		wantField   string
		wantMessage string
	}{
		"valid":                   {body: `{"sku":"A1","quantity":2}`},
		"charset parameter":       {contentType: "application/json; charset=utf-8", body: `{"sku":"A1"}`},
		"structured suffix":       {contentType: "application/merge-patch+json", body: `{"sku":"A1"}`},
		"trailing whitespace":     {body: "{\"sku\":\"A1\"}\n\n"},
		"missing content type":    {contentType: "-", body: `{}`, wantStatus: 415, wantMessage: "Content-Type header is missing"},
		"wrong content type":      {contentType: "text/plain", body: `{}`, wantStatus: 415, wantMessage: `Content-Type "text/plain" is not supported`},
		"form content type":       {contentType: "application/x-www-form-urlencoded", body: `a=b`, wantStatus: 415},
		"unknown field":           {body: `{"sku":"A1","qty":2}`, wantStatus: 400, wantField: "qty", wantMessage: `unknown field "qty"`},
		"wrong type":              {body: `{"quantity":"two"}`, wantStatus: 400, wantField: "quantity", wantMessage: `field "quantity" must be a number, not string`},
		"wrong nested type":       {body: `{"items":[{"price":"x"}]}`, wantStatus: 400, wantField: "items.price", wantMessage: "must be a number"},
		"wrong top-level type":    {body: `[1,2]`, wantStatus: 400, wantMessage: "the request body must be an object, not array"},
		"trailing value":          {body: `{"sku":"A1"}{"sku":"B2"}`, wantStatus: 400, wantMessage: "single JSON value"},
		"trailing garbage":        {body: `{"sku":"A1"} xyz`, wantStatus: 400, wantMessage: "single JSON value"},
		"malformed":               {body: `{"sku":}`, wantStatus: 400, wantMessage: "not valid JSON (at byte 8)"},
		"truncated":               {body: `{"sku":"A1"`, wantStatus: 400, wantMessage: "ends too early"},
		"empty":                   {body: ``, wantStatus: 400, wantMessage: "the request body is empty"},
		"over the limit":          {body: `{"sku":"` + strings.Repeat("a", 100) + `"}`, limit: 50, wantStatus: 413, wantMessage: "exceeds 50 bytes"},
		"over the limit, chunked": {body: `{"sku":"` + strings.Repeat("a", 100) + `"}`, limit: -50, wantStatus: 413},
		"trailing data over limit": {
			body: `{"sku":"A1"}` + strings.Repeat(" ", 10) + strings.Repeat("x", 60), limit: 40, wantStatus: 413,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(tc.body))
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			limit := tc.limit
			if limit < 0 {
				// An unknown length, as with chunked encoding: only the
				// reader can enforce the limit.
				req.ContentLength, limit = -1, -limit
			}
			rec := httptest.NewRecorder()
			var got orderRequest
			LimitBody(limit)(HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				if err := DecodeJSON(r, &got); err != nil {
					return err
				}
				return WriteJSON(w, 200, got)
			})).ServeHTTP(rec, req)

			if tc.wantStatus == 0 {
				if rec.Code != 200 || got.SKU != "A1" {
					t.Fatalf("status %d, decoded %+v, body %s", rec.Code, got, rec.Body.String())
				}
				return
			}
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			e := errorBody(t, rec)
			if e.Field != tc.wantField || !strings.Contains(e.Message, tc.wantMessage) {
				t.Fatalf("got field %q message %q; want field %q message containing %q", e.Field, e.Message, tc.wantField, tc.wantMessage)
			}
		})
	}
}

func TestDecodeJSONNoBody(t *testing.T) {
	req := &http.Request{Header: http.Header{"Content-Type": {"application/json"}}}
	var v orderRequest
	err := DecodeJSON(req, &v)
	if diff := cmp.Diff(400, Classify(err).Status); diff != "" {
		t.Fatal(diff)
	}
}
