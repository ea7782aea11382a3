package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return Wrap(ErrInternal, err, "")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong, and which request it was, for support.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// WriteError is the one place where an error becomes an HTTP response:
// a *Error anywhere in the chain gives its status, code and message; a
// timeout gives 504, an oversized body 413; anything else is a 500 whose
// details are logged with the request ID but never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := Classify(err)
	ctx := r.Context()
	if e.Status >= 500 {
		// A 500 is a bug or an outage of our own; 503 and 504 are usually a
		// dependency having a bad moment.
		level := slog.LevelWarn
		if e.Status == http.StatusInternalServerError {
			level = slog.LevelError
		}
		telemetry.Logger(ctx).Log(ctx, level, "request failed",
			slog.String("code", e.Code), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Any("error", err))
	}
	writeErrorBody(w, r, e)
}

// writeErrorBody sends an already classified error.
func writeErrorBody(w http.ResponseWriter, r *http.Request, e *Error) {
	ctx := r.Context()
	if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	_ = WriteJSON(w, e.Status, ErrorBody{Error: ErrorDetail{
		Code: e.Code, Message: e.Message, Field: e.Field, RequestID: telemetry.RequestID(ctx),
	}})
}

// Classify maps any error to what a client may see of it. Use WriteError in
// handlers; Classify is for code that reports errors in other ways.
func Classify(err error) *Error {
	var e *Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		out := *e
		out.Err = nil
		if out.Status < 400 || out.Status > 599 {
			out.Status = http.StatusInternalServerError
		}
		if out.Code == "" {
			out.Code = ErrInternal.Code
		}
		if out.Message == "" {
			out.Message = defaultMessage(out.Code)
		}
		return &out
	case errors.As(err, &tooLarge):
		return Errorf(ErrTooLarge, "the request body exceeds %d bytes", tooLarge.Limit)
	case errors.Is(err, context.DeadlineExceeded):
		return clone(ErrTimeout)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this, but metrics and logs
		// should not count it as a server failure.
		return clone(errCanceled)
	default:
		return clone(ErrInternal)
	}
}

// errCanceled uses nginx's 499 "client closed request", which dashboards know.
var errCanceled = &Error{Status: 499, Code: "canceled", Message: "the request was canceled"}

func clone(kind *Error) *Error {
	e := *kind
	return &e
}

var kinds = []*Error{
	ErrInvalid, ErrUnauthorized, ErrForbidden, ErrNotFound, ErrMethodNotAllowed, ErrConflict, ErrTooLarge,
	ErrUnsupportedMedia, ErrUnprocessable, ErrRateLimited, ErrInternal, ErrUnavailable, ErrTimeout, errCanceled,
}

func defaultMessage(code string) string {
	for _, k := range kinds {
		if k.Code == code {
			return k.Message
		}
	}
	return "the request failed"
}
