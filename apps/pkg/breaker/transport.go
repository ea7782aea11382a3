package breaker

import (
	"context"
	"errors"
	"net/http"
)

// Transport wraps next (nil: http.DefaultTransport) so that calls go
// through b: transport errors, timeouts and 5xx responses count as failures,
// other responses as successes, and a call the caller cancelled counts as
// neither. 429 is the callee asking for patience, not a fault, so it is
// ignored too. While b is open, RoundTrip returns ErrOpen without calling.
func Transport(b *Breaker, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{b: b, next: next}
}

type transport struct {
	b    *Breaker
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	done, err := t.b.Allow()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	switch {
	case err != nil && errors.Is(req.Context().Err(), context.Canceled):
		done(Ignored)
	case err != nil:
		done(Failure)
	case resp.StatusCode >= 500:
		done(Failure)
	case resp.StatusCode == http.StatusTooManyRequests:
		done(Ignored)
	default:
		done(Success)
	}
	return resp, err
}
