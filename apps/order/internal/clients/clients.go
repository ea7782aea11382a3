// Package clients calls the inventory and payment services' internal APIs
// (apps/API.md) on pkg/clientx: mTLS that checks the callee's identity, a
// timeout per call, the request ID passed on and a circuit breaker per
// callee. Answers the saga reacts to are turned into the errors below.
package clients

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/shopstack/shopstack/apps/pkg/breaker"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// Errors the saga decides on. They wrap the callee's answer.
var (
	// ErrInsufficientStock: nothing was reserved.
	ErrInsufficientStock = errors.New("insufficient stock")
	// ErrUnknownSKU: a product does not exist; nothing was reserved.
	ErrUnknownSKU = errors.New("unknown sku")
	// ErrReservationClosed: a commit found the reservation released or
	// expired, or a release found it committed.
	ErrReservationClosed = errors.New("the reservation is no longer open")
	// ErrCardDeclined: the charge was declined; nothing was charged.
	ErrCardDeclined = errors.New("card declined")
	// ErrCardInvalid: the card was refused as invalid; nothing was charged.
	ErrCardInvalid = errors.New("card invalid")
)

// Unavailable reports whether err means the callee could not be used: it
// was unreachable, too slow, overloaded or its breaker is open.
func Unavailable(err error) bool {
	return errors.Is(err, httpx.ErrUnavailable) || errors.Is(err, breaker.ErrOpen)
}

// Ambiguous reports whether a failed call may still have taken effect: no
// answer arrived although the request may have reached the callee, or the
// callee answered with a server error (5xx), which it may have met after
// the effect (a charge captured, then not recorded). An open breaker, a
// refused connection, a client-error answer (4xx) and a 504 "timeout" (the
// services answer it only after giving up, with nothing applied: payment
// records a processor timeout as failed first) are not ambiguous.
func Ambiguous(err error) bool {
	if err == nil || errors.Is(err, breaker.ErrOpen) {
		return false
	}
	var se *clientx.StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 && se.Code != "timeout"
	}
	var ee *Error
	if errors.As(err, &ee) {
		return false
	}
	return Unavailable(err)
}

// Rejected reports whether the callee refused the request itself (a 4xx
// answer the saga has no more specific reaction to): retrying cannot help.
func Rejected(err error) bool {
	var se *clientx.StatusError
	return errors.As(err, &se) && se.Status >= 400 && se.Status < 500
}

// Error is a callee's answer the saga reacts to.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%v: %v", e.Kind, e.Err) }

// Unwrap matches both the kind and the callee's answer.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// classify turns the callee's error answers listed in kinds (by status and,
// when not empty, code) into *Error.
func classify(err error, kinds ...answer) error {
	var se *clientx.StatusError
	if !errors.As(err, &se) {
		return err
	}
	for _, k := range kinds {
		if se.Status == k.status && (k.code == "" || se.Code == k.code) {
			return &Error{Kind: k.kind, Err: err}
		}
	}
	return err
}

type answer struct {
	status int
	code   string
	kind   error
}

var (
	insufficientStock = answer{http.StatusConflict, "insufficient_stock", ErrInsufficientStock}
	unknownSKU        = answer{http.StatusNotFound, "", ErrUnknownSKU}
	reservationClosed = answer{http.StatusConflict, "", ErrReservationClosed}
	cardDeclined      = answer{http.StatusPaymentRequired, "", ErrCardDeclined}
	cardInvalid       = answer{http.StatusUnprocessableEntity, "", ErrCardInvalid}
)

func idempotencyKey(key string) http.Header { return http.Header{"Idempotency-Key": {key}} }
