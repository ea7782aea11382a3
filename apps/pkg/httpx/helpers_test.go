package httpx

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

func testLogger() (*slog.Logger, *testenv.SyncBuffer) {
	buf := &testenv.SyncBuffer{}
	return telemetry.NewLogger(buf, slog.LevelDebug, "test"), buf
}

// errorBody decodes a JSON error response, failing the test if it is not one.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) ErrorDetail {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, body %q", ct, rec.Body.String())
	}
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not an error document: %q", rec.Body.String())
	}
	return body.Error
}
