package clientx

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// StatusError is a non-2xx answer from the callee, with the callee's JSON
// error when it sent one.
//
// errors.Is(err, httpx.ErrConflict) matches a callee's "conflict" code, so a
// caller can react to the callee's answer by kind. When the error is
// returned to an end user unhandled, a 5xx or 429 from the callee becomes a
// 503 (the dependency is unavailable) and any other status a 500: a 4xx from
// a peer service means a bug in the caller, and the callee's message is not
// for end users.
type StatusError struct {
	Service   string // the callee
	Status    int
	Code      string // the callee's error code; empty when it sent no JSON error
	Message   string
	RequestID string
}

func newStatusError(service string, resp *http.Response, body []byte) *StatusError {
	e := &StatusError{Service: service, Status: resp.StatusCode, RequestID: resp.Header.Get(httpx.RequestIDHeader)}
	var eb httpx.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
		if eb.Error.RequestID != "" {
			e.RequestID = eb.Error.RequestID
		}
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func (e *StatusError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s answered %d: %s", e.Service, e.Status, e.Message)
	}
	return fmt.Sprintf("%s answered %d %s: %s", e.Service, e.Status, e.Code, e.Message)
}

// Is matches the httpx error kind with the callee's code.
func (e *StatusError) Is(target error) bool {
	kind, ok := target.(*httpx.Error)
	return ok && e.Code != "" && kind.Code == e.Code
}

// Unwrap makes an unhandled 5xx or 429 an unavailable error for WriteError.
func (e *StatusError) Unwrap() error {
	if e.Status >= 500 || e.Status == http.StatusTooManyRequests {
		return httpx.Wrap(httpx.ErrUnavailable, nil, e.Service+" is unavailable")
	}
	return nil
}
