package mtls

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

type callerKey struct{}

// WithCaller returns ctx carrying the caller's identity, for handler tests.
func WithCaller(ctx context.Context, id ID) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// CallerFrom is the identity of the service that made the request, as
// verified by RequireCaller (or, under Istio, reported by the sidecar).
func CallerFrom(ctx context.Context) (ID, bool) {
	id, ok := ctx.Value(callerKey{}).(ID)
	return id, ok
}

// RequireCaller lets through only requests whose client certificate, verified
// by the TLS handshake, carries one of the allowed SPIFFE IDs; others get a
// 403 JSON error. It reads the verified chain, never the bare peer
// certificates, so it cannot be fooled by a listener that skipped
// verification. An empty allow-list denies everyone, as the call graph means.
func RequireCaller(allowed []string) (httpx.Middleware, error) {
	set := make(map[ID]bool, len(allowed))
	for _, a := range allowed {
		id, err := ParseID(a)
		if err != nil {
			return nil, err
		}
		set[id] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
				httpx.WriteError(w, r, httpx.Errorf(httpx.ErrForbidden, "a verified client certificate is required"))
				return
			}
			id, err := IDFromCertificate(r.TLS.VerifiedChains[0][0])
			if err != nil {
				httpx.WriteError(w, r, httpx.Errorf(httpx.ErrForbidden, "the client certificate carries no usable SPIFFE ID"))
				return
			}
			if !set[id] {
				ctx := r.Context()
				telemetry.Logger(ctx).WarnContext(ctx, "caller not allowed",
					slog.String("caller", id.String()), slog.String("path", r.URL.Path))
				httpx.WriteError(w, r, httpx.Errorf(httpx.ErrForbidden, "%s may not call this service", id))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), id)))
		})
	}, nil
}

// XFCCHeader is the header in which an Envoy sidecar passes on the client
// certificate it verified.
const XFCCHeader = "X-Forwarded-Client-Cert"

// sidecarCaller records the caller identity the Istio sidecar reports. It
// enforces nothing: under Istio the AuthorizationPolicy generated from the
// call graph is the enforcer, and the sidecar is the only way in.
func sidecarCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := parseXFCC(r.Header.Get(XFCCHeader)); ok {
			r = r.WithContext(WithCaller(r.Context(), id))
		}
		next.ServeHTTP(w, r)
	})
}

// parseXFCC returns the URI of the last element of an
// X-Forwarded-Client-Cert header: the element the nearest proxy added about
// its own client. Values may be quoted and contain ',' and ';'.
func parseXFCC(header string) (ID, bool) {
	elements := splitQuoted(header, ',')
	if len(elements) == 0 {
		return ID{}, false
	}
	for _, pair := range splitQuoted(elements[len(elements)-1], ';') {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "URI") {
			continue
		}
		id, err := ParseID(strings.Trim(strings.TrimSpace(value), `"`))
		return id, err == nil
	}
	return ID{}, false
}

// splitQuoted splits s at sep outside double quotes, dropping empty parts.
func splitQuoted(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] == '"' && (i == 0 || s[i-1] != '\\') {
			quoted = !quoted
		}
		if i == len(s) || (s[i] == sep && !quoted) {
			if p := strings.TrimSpace(s[start:i]); p != "" {
				parts = append(parts, p)
			}
			start = i + 1
		}
	}
	return parts
}
