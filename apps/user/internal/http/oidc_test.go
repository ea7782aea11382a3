package http_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// A standard OpenID Connect client library discovers the issuer from
// /.well-known/openid-configuration, fetches the JWKS from jwks_uri and
// verifies the access tokens, so any component outside the Shop that speaks
// OIDC can check them too.
func TestStandardOIDCClientVerifiesTokens(t *testing.T) {
	e := newEnv(t)
	ctx := oidc.ClientContext(testContext(t), http.DefaultClient)
	provider, err := oidc.NewProvider(ctx, e.IssuerURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if provider.Endpoint().TokenURL != e.IssuerURL+"/v1/auth/token" {
		t.Fatalf("token endpoint %q", provider.Endpoint().TokenURL)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: testAudience, SupportedSigningAlgs: []string{oidc.ES256}})

	wantStatus(t, e.register(t, "oidc@example.com", "correct horse battery"), http.StatusCreated)
	tok := accessToken(t, e.token(t, "oidc@example.com", "correct horse battery"))
	idt, err := verifier.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Subject == "" || !slices.Equal(claims.Roles, []string{"customer"}) {
		t.Fatalf("claims: sub %q roles %v (%v)", idt.Subject, claims.Roles, err)
	}

	t.Run("a token for another audience is refused", func(t *testing.T) {
		other := provider.Verifier(&oidc.Config{ClientID: "someone-else"})
		if _, err := other.Verify(ctx, tok); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("a tampered token is refused", func(t *testing.T) {
		tampered := tok[:len(tok)-4] + "AAAA"
		if _, err := verifier.Verify(ctx, tampered); err == nil {
			t.Fatal("accepted")
		}
	})
}
