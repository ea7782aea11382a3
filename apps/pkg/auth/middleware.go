package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

type claimsKey struct{}

// WithClaims returns ctx carrying claims, for handler tests.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom is the verified claims of the request's bearer.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// errNoBearer is the refusal of a request without a bearer token.
var errNoBearer = &TokenError{Reason: "no bearer token"}

// BearerToken extracts the token of an "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", errNoBearer
	}
	return strings.TrimSpace(token), nil
}

// Require lets through only requests with a valid bearer token, with its
// claims in the context; others get a 401 JSON error and
// WWW-Authenticate: Bearer error="invalid_token" (RFC 6750).
func (v *Verifier) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := BearerToken(r)
		var claims *Claims
		if err == nil {
			claims, err = v.Verify(token)
		}
		if err != nil {
			unauthorized(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), claims)))
	})
}

func unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	msg := "invalid token"
	var te *TokenError
	switch {
	case errors.Is(err, errNoBearer):
		msg = "an Authorization: Bearer token is required"
	case errors.As(err, &te):
		msg = te.Error()
	}
	httpx.WriteError(w, r, httpx.Wrap(httpx.ErrUnauthorized, err, msg))
}

// RequireRole lets through only bearers with role (403 otherwise). It goes
// inside Verifier.Require; without verified claims it answers 401.
func RequireRole(role string) httpx.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := ClaimsFrom(r.Context())
			if !ok {
				unauthorized(w, r, errNoBearer)
				return
			}
			if !c.HasRole(role) {
				httpx.WriteError(w, r, httpx.Errorf(httpx.ErrForbidden, "the %q role is required", role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
