package http

import (
	"net/http"
	"strings"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// discovery is the OpenID Provider metadata (OpenID Connect Discovery 1.0,
// RFC 8414) of the token issuer, enough for standard client libraries to
// find the keys and the token endpoint.
type discovery struct {
	Issuer           string   `json:"issuer"`
	JWKSURI          string   `json:"jwks_uri"`
	TokenEndpoint    string   `json:"token_endpoint"`
	GrantTypes       []string `json:"grant_types_supported"`
	SigningAlgs      []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	ResponseTypes    []string `json:"response_types_supported"`
	SubjectTypes     []string `json:"subject_types_supported"`
	ClaimsSupported  []string `json:"claims_supported"`
	ScopesSupported  []string `json:"scopes_supported"`
}

func newDiscovery(issuer string) discovery {
	base := strings.TrimSuffix(issuer, "/")
	return discovery{
		Issuer:           issuer,
		JWKSURI:          base + "/.well-known/jwks.json",
		TokenEndpoint:    base + "/v1/auth/token",
		GrantTypes:       []string{"password"},
		SigningAlgs:      []string{"ES256"},
		TokenAuthMethods: []string{"none"},
		ResponseTypes:    []string{"token"},
		SubjectTypes:     []string{"public"},
		ClaimsSupported:  []string{"iss", "sub", "aud", "exp", "iat", "jti", "roles"},
		ScopesSupported:  []string{"openid"},
	}
}

// cachePublic lets gateways and clients cache what changes only on a key
// rotation, which keeps the old key published longer than this anyway.
const cachePublic = "public, max-age=300"

func (h *handlers) openIDConfiguration(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", cachePublic)
	return httpx.WriteJSON(w, http.StatusOK, h.discovery)
}

// jwks serves the key set the operator publishes, as the Verifier last read
// it from the mounted file, so a rotation shows here without a restart.
func (h *handlers) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", cachePublic)
	_, err := w.Write(h.Verifier.JWKS())
	return err
}
