// Package httpx is the HTTP plumbing every shopstack service shares: typed
// errors and the one function that turns any error into a status code and a
// JSON body, strict JSON decoding, request IDs, access logs and metrics, panic
// recovery, and a Server that runs the public, internal and ops listeners and
// drains them gracefully.
package httpx

import (
	"fmt"
	"net/http"
)

// Error is an error a client may see: an HTTP status, a stable
// machine-readable code and a human message. Err, the cause, is logged but
// never sent.
type Error struct {
	Status  int    // HTTP status code
	Code    string // stable, snake_case, for programs
	Message string // for humans; must not contain secrets or internals
	Field   string // the offending request field, when there is one
	Err     error  // the cause; logged, never sent
}

func (e *Error) Error() string {
	msg := e.Code
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, httpx.ErrNotFound) true for every not_found error,
// whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// The kinds of errors. Compare with errors.Is; create with Errorf.
var (
	ErrInvalid          = &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "the request is invalid"}
	ErrUnauthorized     = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "authentication is required"}
	ErrForbidden        = &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "not allowed"}
	ErrNotFound         = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	ErrMethodNotAllowed = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed"}
	ErrConflict         = &Error{Status: http.StatusConflict, Code: "conflict", Message: "the request conflicts with the current state"}
	ErrTooLarge         = &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "the request body is too large"}
	ErrUnsupportedMedia = &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "the request body must be application/json"}
	ErrUnprocessable    = &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: "the request cannot be carried out"}
	ErrRateLimited      = &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many requests"}
	ErrInternal         = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	ErrUnavailable      = &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "temporarily unavailable, try again later"}
	ErrTimeout          = &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "the request took too long"}
)

// Errorf returns a new error of kind with a client-visible message.
//
//	return httpx.Errorf(httpx.ErrNotFound, "order %s not found", id)
func Errorf(kind *Error, format string, args ...any) *Error {
	return &Error{Status: kind.Status, Code: kind.Code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns a new error of kind with a client-visible message and a cause
// that is logged but never sent.
func Wrap(kind *Error, cause error, message string) *Error {
	return &Error{Status: kind.Status, Code: kind.Code, Message: message, Err: cause}
}

// FieldError returns an invalid_request error about one request field.
func FieldError(field, format string, args ...any) *Error {
	e := Errorf(ErrInvalid, format, args...)
	e.Field = field
	return e
}
