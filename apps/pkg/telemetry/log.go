// Package telemetry gives every service the same structured JSON logs (with
// the request ID of the request being served) and the same Prometheus HTTP
// metrics, so dashboards and log queries work across all four services.
package telemetry

import (
	"context"
	"io"
	"log/slog"
)

// NewLogger returns a JSON logger at level. Every record carries the service
// name and, when logged with a context that has one, the request ID: use the
// ...Context methods (InfoContext, ErrorContext) inside request handlers.
func NewLogger(w io.Writer, level slog.Leveler, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(contextHandler{h}).With(slog.String("service", service))
}

// contextHandler adds request-scoped attributes from the context, so code
// deep in a call chain logs the request ID without passing a logger around.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String(RequestIDKey, id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// RequestIDKey is the log attribute holding the request ID.
const RequestIDKey = "request_id"

type requestIDKey struct{}
type loggerKey struct{}

// WithRequestID returns ctx carrying the request ID id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request ID in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithLogger returns ctx carrying logger, for code that only has the request.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// Logger is the logger in ctx, or slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
