package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLogger(t *testing.T) {
	t.Run("records carry service and request ID", func(t *testing.T) {
		var buf bytes.Buffer
		log := NewLogger(&buf, slog.LevelInfo, "order")
		ctx := WithRequestID(context.Background(), "req-1")
		log.With("component", "saga").InfoContext(ctx, "reserved", "sku", "A1")
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("not JSON: %q", buf.String())
		}
		for k, want := range map[string]string{"msg": "reserved", "service": "order", "request_id": "req-1", "component": "saga", "sku": "A1", "level": "INFO"} {
			if rec[k] != want {
				t.Errorf("%s = %v, want %q", k, rec[k], want)
			}
		}
	})
	t.Run("no request ID outside a request", func(t *testing.T) {
		var buf bytes.Buffer
		NewLogger(&buf, slog.LevelInfo, "order").Info("starting")
		if strings.Contains(buf.String(), "request_id") {
			t.Fatalf("unexpected request_id: %s", buf.String())
		}
	})
	t.Run("level filters", func(t *testing.T) {
		var buf bytes.Buffer
		NewLogger(&buf, slog.LevelWarn, "order").Info("noise")
		if buf.Len() != 0 {
			t.Fatalf("info logged at warn level: %s", buf.String())
		}
	})
	t.Run("logger travels in the context", func(t *testing.T) {
		l := slog.New(slog.DiscardHandler)
		if Logger(WithLogger(context.Background(), l)) != l {
			t.Fatal("logger lost")
		}
		if Logger(context.Background()) != slog.Default() {
			t.Fatal("no fallback to slog.Default")
		}
	})
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	m.ObserveRequest("/v1/orders/{id}", "GET", 200, 30*time.Millisecond)
	m.ObserveRequest("/v1/orders/{id}", "GET", 200, 30*time.Millisecond)
	m.ObserveRequest("unmatched", "BREW", 404, time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`http_requests_total{code="200",method="GET",route="/v1/orders/{id}"} 2`,
		`http_requests_total{code="404",method="OTHER",route="unmatched"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="/v1/orders/{id}",le="0.05"} 2`,
		`http_request_duration_seconds_count{method="GET",route="/v1/orders/{id}"} 2`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
