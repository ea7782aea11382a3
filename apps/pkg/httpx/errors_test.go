package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		err  error
		want Error
	}{
		"kind with message": {
			err:  Errorf(ErrNotFound, "order %s not found", "o1"),
			want: Error{Status: 404, Code: "not_found", Message: "order o1 not found"},
		},
		"wrapped by the domain": {
			err:  fmt.Errorf("loading order: %w", Errorf(ErrConflict, "already paid")),
			want: Error{Status: 409, Code: "conflict", Message: "already paid"},
		},
		"bare kind gets its default message": {
			err:  fmt.Errorf("reserving: %w", ErrUnavailable),
			want: Error{Status: 503, Code: "unavailable", Message: ErrUnavailable.Message},
		},
		"custom code": {
			err:  &Error{Status: 402, Code: "payment_declined", Message: "the card was declined"},
			want: Error{Status: 402, Code: "payment_declined", Message: "the card was declined"},
		},
		"field error": {
			err:  FieldError("quantity", "must be positive"),
			want: Error{Status: 400, Code: "invalid_request", Message: "must be positive", Field: "quantity"},
		},
		"cause is dropped": {
			err:  Wrap(ErrUnavailable, errors.New("dial tcp 10.0.0.7:5432: refused"), "the database is unavailable"),
			want: Error{Status: 503, Code: "unavailable", Message: "the database is unavailable"},
		},
		"timeout": {
			err:  fmt.Errorf("calling payment: %w", context.DeadlineExceeded),
			want: Error{Status: 504, Code: "timeout", Message: ErrTimeout.Message},
		},
		"client went away": {
			err:  context.Canceled,
			want: Error{Status: 499, Code: "canceled", Message: "the request was canceled"},
		},
		"body too large": {
			err:  &http.MaxBytesError{Limit: 10},
			want: Error{Status: 413, Code: "payload_too_large", Message: "the request body exceeds 10 bytes"},
		},
		"anything else is internal and says nothing": {
			err:  errors.New("pq: password authentication failed for user order"),
			want: Error{Status: 500, Code: "internal", Message: "internal error"},
		},
		"nonsense status becomes 500": {
			err:  &Error{Status: 200, Code: "weird"},
			want: Error{Status: 500, Code: "weird", Message: "the request failed"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, *Classify(tc.err)); diff != "" {
				t.Fatalf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestErrorsIs(t *testing.T) {
	err := fmt.Errorf("get: %w", Errorf(ErrNotFound, "order o1 not found"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatal("a not_found error is not ErrNotFound")
	}
	if errors.Is(err, ErrConflict) {
		t.Fatal("a not_found error is ErrConflict")
	}
	cause := errors.New("boom")
	if !errors.Is(Wrap(ErrInternal, cause, ""), cause) {
		t.Fatal("Wrap hides the cause from errors.Is")
	}
}

func TestWriteError(t *testing.T) {
	t.Run("JSON body with request ID", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/orders/o1", nil)
		req = req.WithContext(telemetry.WithRequestID(req.Context(), "req-42"))
		WriteError(rec, req, Errorf(ErrNotFound, "order o1 not found"))
		if rec.Code != 404 {
			t.Fatalf("status %d", rec.Code)
		}
		want := ErrorDetail{Code: "not_found", Message: "order o1 not found", RequestID: "req-42"}
		if diff := cmp.Diff(want, errorBody(t, rec)); diff != "" {
			t.Fatalf("(-want +got)\n%s", diff)
		}
	})
	t.Run("internal errors are logged, not sent", func(t *testing.T) {
		logger, logs := testLogger()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/orders", nil)
		ctx := telemetry.WithLogger(telemetry.WithRequestID(req.Context(), "req-7"), logger)
		WriteError(rec, req.WithContext(ctx), errors.New("secret connection string"))
		if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
			t.Fatalf("status %d, body %q", rec.Code, rec.Body.String())
		}
		if !strings.Contains(logs.String(), "secret connection string") || !strings.Contains(logs.String(), `"request_id":"req-7"`) {
			t.Fatalf("the cause was not logged with the request ID: %s", logs.String())
		}
	})
	t.Run("unavailable suggests a retry", func(t *testing.T) {
		rec := httptest.NewRecorder()
		WriteError(rec, httptest.NewRequest("GET", "/", nil), ErrUnavailable)
		if rec.Header().Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}
