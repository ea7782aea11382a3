package httpx

import (
	"context"
	"net/http"
	"strings"
)

// HandlerFunc is a handler that returns its error instead of writing it, so
// every failure goes through WriteError.
//
//	func (h *handlers) getOrder(w http.ResponseWriter, r *http.Request) error {
//		o, err := h.orders.Get(r.Context(), r.PathValue("id"))
//		if err != nil {
//			return err
//		}
//		return httpx.WriteJSON(w, http.StatusOK, o)
//	}
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and writes its error, if any.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		WriteError(w, r, err)
	}
}

// Router is an http.ServeMux (same patterns: "GET /v1/orders/{id}") that
// reports the matched pattern to the metrics and access log as the route,
// and answers unknown paths and methods with JSON errors.
type Router struct {
	mux *http.ServeMux
}

// NewRouter returns an empty Router.
func NewRouter() *Router { return &Router{mux: http.NewServeMux()} }

// Handle registers h for pattern.
func (rt *Router) Handle(pattern string, h http.Handler) {
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := requestInfoFrom(r.Context()); info != nil {
			info.route = routeOf(r.Pattern)
		}
		h.ServeHTTP(w, r)
	}))
}

// HandleFunc registers an error-returning handler for pattern.
func (rt *Router) HandleFunc(pattern string, f HandlerFunc) { rt.Handle(pattern, f) }

// ServeHTTP dispatches to the matching handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.mux.Handler(r); pattern != "" {
		rt.mux.ServeHTTP(w, r)
		return
	}
	// No pattern: the mux would answer 404, 405 or a redirect in plain text.
	// Let it decide, then say the same thing in JSON.
	probe := &headerRecorder{header: http.Header{}}
	rt.mux.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusNotFound:
		WriteError(w, r, Errorf(ErrNotFound, "no route for %s %s", r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		WriteError(w, r, Errorf(ErrMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	default:
		for k, v := range probe.header {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
	}
}

// routeOf drops the method from a pattern: the method is its own label.
func routeOf(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		return strings.TrimSpace(pattern[i:])
	}
	return pattern
}

// headerRecorder captures the status and headers the mux would send.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header { return h.header }
func (h *headerRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}
func (h *headerRecorder) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return len(b), nil
}

// requestInfo is filled in as a request travels inward, for the access log
// and metrics wrapped around it.
type requestInfo struct {
	route string
}

type requestInfoKey struct{}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}
