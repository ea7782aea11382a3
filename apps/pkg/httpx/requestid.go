package httpx

import (
	"crypto/rand"
	"net/http"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// RequestIDHeader carries the request ID between clients, the gateway and
// the services.
const RequestIDHeader = "X-Request-ID"

// maxRequestIDLen bounds what a client can make us log and echo.
const maxRequestIDLen = 128

// ValidRequestID reports whether id is safe to adopt: 1 to 128 characters
// of letters, digits and - _ . : so it cannot inject anything into logs or
// headers.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh random request ID.
func NewRequestID() string { return rand.Text() }

// RequestID adopts a valid incoming X-Request-ID (so one ID follows a request
// from the gateway through every service) or makes a new one, echoes it in
// the response and puts it in the request context, where loggers and
// PropagateRequestID find it.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !ValidRequestID(id) {
			id = NewRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(telemetry.WithRequestID(r.Context(), id)))
	})
}

// PropagateRequestID wraps an outgoing transport (nil means
// http.DefaultTransport) so each request carries the request ID of its
// context, unless it already has one.
func PropagateRequestID(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		id := telemetry.RequestID(req.Context())
		if id == "" || req.Header.Get(RequestIDHeader) != "" {
			return next.RoundTrip(req)
		}
		// A RoundTripper must not modify the caller's request.
		req = req.Clone(req.Context())
		req.Header.Set(RequestIDHeader, id)
		return next.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
