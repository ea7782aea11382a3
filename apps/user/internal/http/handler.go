// Package http is the user service's public HTTP API (apps/API.md): it
// decodes requests, calls the account service, and maps domain errors to
// the services' JSON errors in one function, writeError.
package http

import (
	"errors"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/user/internal/account"
	"github.com/shopstack/shopstack/apps/user/internal/domain"
)

// Config is what the handlers need.
type Config struct {
	Accounts *account.Service
	Verifier *auth.Verifier // checks tokens on /v1/users/me; its JWKS is published
	Issuer   string         // SHOPSTACK_JWT_ISSUER, the base of the discovery URLs
	Now      func() time.Time
}

type handlers struct {
	Config
	discovery discovery
}

// NewHandler returns the public API.
func NewHandler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handlers{Config: cfg, discovery: newDiscovery(cfg.Issuer)}
	r := httpx.NewRouter()
	r.HandleFunc("POST /v1/users", h.register)
	r.HandleFunc("POST /v1/auth/token", h.token)
	r.Handle("GET /v1/users/me", cfg.Verifier.Require(httpx.HandlerFunc(h.me)))
	r.HandleFunc("GET /.well-known/jwks.json", h.jwks)
	r.HandleFunc("GET /.well-known/openid-configuration", h.openIDConfiguration)
	return r
}

// userJSON is a user as the API shows it. The admin has a username and no email.
type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email,omitempty"`
	Username  string    `json:"username,omitempty"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

func toJSON(u domain.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Username: u.Username, Roles: u.RoleNames(), CreatedAt: u.CreatedAt.UTC()}
}

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (h *handlers) register(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	u, err := h.Accounts.Register(r.Context(), req.Email, req.Password)
	if err != nil {
		return h.writeError(w, r, err)
	}
	w.Header().Set("Location", "/v1/users/me")
	return httpx.WriteJSON(w, http.StatusCreated, toJSON(u))
}

func (h *handlers) me(w http.ResponseWriter, r *http.Request) error {
	claims, _ := auth.ClaimsFrom(r.Context())
	u, err := h.Accounts.User(r.Context(), claims.Subject)
	if err != nil {
		return h.writeError(w, r, err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toJSON(u))
}

// tokenResponse is RFC 6749 section 5.1's successful answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// errUnsupportedGrant is RFC 6749's code for a grant type we do not offer.
var errUnsupportedGrant = &httpx.Error{Status: http.StatusBadRequest, Code: "unsupported_grant_type"}

// token is the OAuth 2.0 token endpoint with the resource owner password
// grant (RFC 6749 section 4.3). As the RFC requires, parameters it does not
// know (client_id, scope) are ignored, but none may appear twice, and
// credentials are read from the body only, never from the URL.
func (h *handlers) token(w http.ResponseWriter, r *http.Request) error {
	// Token responses carry credentials: no cache may keep them, errors included.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return httpx.Errorf(httpx.ErrUnsupportedMedia, "the token endpoint takes application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return httpx.Errorf(httpx.ErrInvalid, "the request body is not a valid form")
	}
	for name, values := range r.PostForm {
		if len(values) > 1 {
			return httpx.FieldError(name, "parameter %q appears more than once", name)
		}
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "":
		return httpx.FieldError("grant_type", "grant_type is required")
	case "password":
	default:
		e := httpx.Errorf(errUnsupportedGrant, "grant_type %q is not supported; use password", truncate(gt, 40))
		e.Field = "grant_type"
		return e
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	switch {
	case strings.TrimSpace(username) == "":
		return httpx.FieldError("username", "username is required")
	case password == "":
		return httpx.FieldError("password", "password is required")
	}
	tok, _, err := h.Accounts.Login(r.Context(), username, password)
	if err != nil {
		return h.writeError(w, r, err)
	}
	return httpx.WriteJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok.Value, TokenType: "Bearer",
		ExpiresIn: int64(math.Ceil(tok.ExpiresAt.Sub(h.Now()).Seconds())),
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// writeError is the one place domain errors become HTTP errors. It returns
// the error for httpx.HandlerFunc to write, after setting any header it needs.
func (h *handlers) writeError(w http.ResponseWriter, r *http.Request, err error) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	switch de.Kind {
	case domain.KindInvalid:
		return httpx.FieldError(de.Field, "%s %s", de.Field, de.Message)
	case domain.KindConflict:
		return &httpx.Error{Status: http.StatusConflict, Code: "email_taken", Message: de.Message, Field: de.Field}
	case domain.KindInvalidCredentials:
		return &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_grant", Message: de.Message}
	case domain.KindLocked:
		secs := max(1, int(math.Ceil(de.RetryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return httpx.Errorf(httpx.ErrRateLimited, "%s, retry in %d s", de.Message, secs)
	case domain.KindNotFound:
		return httpx.Errorf(httpx.ErrNotFound, "%s", de.Message)
	case domain.KindBusy:
		w.Header().Set("Retry-After", "2")
		return httpx.Wrap(httpx.ErrUnavailable, err, de.Message)
	}
	return err
}
