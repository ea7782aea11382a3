package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

func TestRequestID(t *testing.T) {
	var seen string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = telemetry.RequestID(r.Context())
	}))
	t.Run("a valid incoming ID is adopted and echoed", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(RequestIDHeader, "gw-abc.123:4")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if seen != "gw-abc.123:4" || rec.Header().Get(RequestIDHeader) != "gw-abc.123:4" {
			t.Fatalf("context %q, header %q", seen, rec.Header().Get(RequestIDHeader))
		}
	})
	for name, bad := range map[string]string{
		"missing":       "",
		"too long":      strings.Repeat("a", 129),
		"log injection": "x\n{\"level\":\"ERROR\"}",
		"spaces":        "a b",
	} {
		t.Run("replaced when "+name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set(RequestIDHeader, bad)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if seen == bad || !ValidRequestID(seen) || rec.Header().Get(RequestIDHeader) != seen {
				t.Fatalf("context %q, header %q", seen, rec.Header().Get(RequestIDHeader))
			}
		})
	}
	t.Run("generated IDs differ", func(t *testing.T) {
		if NewRequestID() == NewRequestID() {
			t.Fatal("two equal IDs")
		}
	})
}

func TestPropagateRequestID(t *testing.T) {
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(RequestIDHeader))
	}))
	defer upstream.Close()
	client := &http.Client{Transport: PropagateRequestID(upstream.Client().Transport)}

	call := func(ctxID, headerID string) *http.Request {
		req, _ := http.NewRequestWithContext(telemetry.WithRequestID(t.Context(), ctxID), "GET", upstream.URL, nil)
		if headerID != "" {
			req.Header.Set(RequestIDHeader, headerID)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return req
	}
	req := call("req-1", "")
	call("", "")
	call("req-2", "explicit")
	if want := []string{"req-1", "", "explicit"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("upstream saw %q, want %q", got, want)
	}
	if req.Header.Get(RequestIDHeader) != "" {
		t.Fatal("the caller's request was modified")
	}
}

func TestInstrument(t *testing.T) {
	logger, logs := testLogger()
	metrics := telemetry.NewMetrics()
	rt := NewRouter()
	rt.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, 200, map[string]string{"id": r.PathValue("id")})
	})
	rt.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]any
		return DecodeJSON(r, &v)
	})
	rt.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) error { panic("boom") })
	rt.HandleFunc("GET /half", func(w http.ResponseWriter, r *http.Request) error {
		_, _ = w.Write([]byte("partial"))
		panic("late boom")
	})
	srv := httptest.NewServer(Instrument(rt, logger, metrics, 64))
	defer srv.Close()

	do := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("routes are templates, not paths", func(t *testing.T) {
		for _, id := range []string{"o1", "o2", "o3"} {
			if resp := do("GET", "/v1/orders/"+id, ""); resp.StatusCode != 200 || resp.Header.Get(RequestIDHeader) == "" {
				t.Fatalf("status %d, request ID %q", resp.StatusCode, resp.Header.Get(RequestIDHeader))
			}
		}
		do("GET", "/nope/1", "")
		do("GET", "/nope/2", "")
		scrape := scrapeMetrics(t, metrics)
		for _, want := range []string{
			`http_requests_total{code="200",method="GET",route="/v1/orders/{id}"} 3`,
			`http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		} {
			if !strings.Contains(scrape, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(scrape, `route="/v1/orders/o1"`) || strings.Contains(scrape, `route="/nope`) {
			t.Error("raw paths leaked into metric labels")
		}
	})
	t.Run("panic becomes a logged JSON 500", func(t *testing.T) {
		resp := do("GET", "/panic", "")
		if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if !strings.Contains(logs.String(), `"panic":"boom"`) || !strings.Contains(logs.String(), "goroutine") {
			t.Fatalf("panic not logged with its stack: %s", logs.String())
		}
		if !strings.Contains(scrapeMetrics(t, metrics), `http_requests_total{code="500",method="GET",route="/panic"} 1`) {
			t.Error("the 500 was not counted")
		}
		if resp := do("GET", "/v1/orders/o9", ""); resp.StatusCode != 200 {
			t.Fatal("the server did not survive the panic")
		}
	})
	t.Run("panic after the response started aborts the connection", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/half")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("the truncated response looked complete")
		}
	})
	t.Run("body limit", func(t *testing.T) {
		if resp := do("POST", "/v1/orders", `{"a":"`+strings.Repeat("x", 100)+`"}`); resp.StatusCode != 413 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("access log line", func(t *testing.T) {
		if !strings.Contains(logs.String(), `"method":"GET","route":"/v1/orders/{id}","path":"/v1/orders/o1","status":200`) {
			t.Fatalf("no access log line: %s", logs.String())
		}
		if !strings.Contains(logs.String(), `"request_id":"`) {
			t.Fatal("access log lacks the request ID")
		}
	})
}

func scrapeMetrics(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestRouterErrors(t *testing.T) {
	rt := NewRouter()
	rt.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) error { return nil })
	rt.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) error { return nil })
	rt.HandleFunc("GET /v1/things/", func(w http.ResponseWriter, r *http.Request) error { return nil })

	t.Run("unknown path is a JSON 404", func(t *testing.T) {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/x", nil))
		if e := errorBody(t, rec); rec.Code != 404 || e.Code != "not_found" {
			t.Fatalf("%d %+v", rec.Code, e)
		}
	})
	t.Run("wrong method is a JSON 405 with Allow", func(t *testing.T) {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest("DELETE", "/v1/orders", nil))
		if e := errorBody(t, rec); rec.Code != 405 || e.Code != "method_not_allowed" || rec.Header().Get("Allow") == "" {
			t.Fatalf("%d %+v allow=%q", rec.Code, e, rec.Header().Get("Allow"))
		}
	})
	t.Run("redirects still work", func(t *testing.T) {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/things", nil))
		if rec.Code/100 != 3 || rec.Header().Get("Location") != "/v1/things/" {
			t.Fatalf("%d %v", rec.Code, rec.Header())
		}
	})
	t.Run("handler errors go through WriteError", func(t *testing.T) {
		rt.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) error {
			return Errorf(ErrConflict, "already paid")
		})
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest("GET", "/fail", nil))
		if e := errorBody(t, rec); rec.Code != 409 || e.Message != "already paid" {
			t.Fatalf("%d %+v", rec.Code, e)
		}
	})
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "h") }), mw("a"), mw("b")).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if strings.Join(order, "") != "abh" {
		t.Fatalf("order %v", order)
	}
}
