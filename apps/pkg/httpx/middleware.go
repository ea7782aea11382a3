package httpx

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain applies middlewares to h so that the first one is the outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Instrument is the standard stack the Server puts in front of the public and
// internal handlers, outermost first: request ID, access log and metrics,
// panic recovery, body limit. Route templates come from a Router; requests
// that no Router route matched are labelled "unmatched".
func Instrument(next http.Handler, logger *slog.Logger, metrics *telemetry.Metrics, bodyLimit int64) http.Handler {
	return Chain(next, RequestID, observe(logger, metrics), Recover, LimitBody(bodyLimit))
}

// LimitBody caps request bodies at limit bytes; DecodeJSON turns a longer
// body into a 413. A limit of zero or less means no cap.
func LimitBody(limit int64) Middleware {
	return func(next http.Handler) http.Handler {
		if limit <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				WriteError(w, r, &http.MaxBytesError{Limit: limit})
				return
			}
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Recover turns a panic into a logged 500 (with the stack) instead of a
// dropped connection; when the response had already started, the connection
// is aborted instead.
// http.ErrAbortHandler is passed on: it is the documented way to abort.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			ctx := r.Context()
			telemetry.Logger(ctx).ErrorContext(ctx, "handler panicked",
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				// Part of the response is out: the client must see a broken
				// connection, not a truncated body it could take as complete.
				panic(http.ErrAbortHandler)
			}
			writeErrorBody(w, r, clone(ErrInternal)) // already logged, with more detail
		}()
		next.ServeHTTP(w, r)
	})
}

// routeUnmatched labels requests no route template matched, so unknown paths
// share one series.
const routeUnmatched = "unmatched"

// observe logs one line per request and records the HTTP metrics. The route
// template is filled in by the Router deeper in the chain.
func observe(logger *slog.Logger, metrics *telemetry.Metrics) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			info := &requestInfo{}
			ctx := withRequestInfo(telemetry.WithLogger(r.Context(), logger), info)
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				route := info.route
				if route == "" {
					route = routeUnmatched
				}
				elapsed := time.Since(start)
				if metrics != nil {
					metrics.ObserveRequest(route, r.Method, status, elapsed)
				}
				logger.LogAttrs(ctx, accessLevel(status), "request",
					slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
					slog.Int("status", status), slog.Int64("bytes", sw.bytes),
					slog.Duration("duration", elapsed), slog.String("remote", r.RemoteAddr))
			}()
			next.ServeHTTP(sw, r.WithContext(ctx))
		})
	}
}

// accessLevel makes failures of the server itself stand out in the logs.
func accessLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// statusWriter remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the underlying writer's Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush supports streaming responses through the wrapper.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
