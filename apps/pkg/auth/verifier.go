package auth

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// MaxLeeway is the most clock skew a Verifier tolerates on exp, nbf and iat.
const MaxLeeway = 60 * time.Second

// MaxLifetime is the furthest in the future a token's exp may lie. Access
// tokens live minutes; a far expiry is a token minted outside the issuer's
// rules (a leaked signing key, a misconfigured signer) and is refused.
const MaxLifetime = 24 * time.Hour

// unknownKidRefresh is how stale the key set may be before a token with an
// unknown kid makes the Verifier look at the file again: right after a key
// rotation the new kid can arrive before the next scheduled check.
const unknownKidRefresh = time.Second

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	JWKSFile string // SHOPSTACK_JWKS_FILE
	Issuer   string // the exact iss required
	Audience string // must be among the token's aud

	Leeway         time.Duration    // clock skew allowed; zero: MaxLeeway; more than MaxLeeway is refused
	ReloadInterval time.Duration    // zero: DefaultReloadInterval
	Now            func() time.Time // nil: time.Now
	Logger         *slog.Logger     // nil: slog.Default()
}

// Verifier checks end-user tokens against the published key set, which it
// re-reads when the file changes, so keys rotate without restarts.
type Verifier struct {
	cfg  VerifierConfig
	keys *watched[keySet]
}

type keySet struct {
	keys map[string]*ecdsa.PublicKey
	raw  []byte
}

// NewVerifier loads the key set; a missing or unusable file is an error.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	switch {
	case cfg.JWKSFile == "" || cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("auth: a verifier needs a JWKS file, an issuer and an audience")
	case cfg.Leeway > MaxLeeway || cfg.Leeway < 0:
		return nil, fmt.Errorf("auth: leeway %s is outside 0 to %s", cfg.Leeway, MaxLeeway)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = MaxLeeway
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &Verifier{cfg: cfg}
	v.keys = &watched[keySet]{
		paths: []string{cfg.JWKSFile}, interval: cfg.ReloadInterval, now: cfg.Now,
		build: func(c [][]byte) (keySet, error) {
			keys, err := parseJWKS(c[0])
			if err == nil {
				cfg.Logger.Info("JWKS loaded", slog.String("file", cfg.JWKSFile), slog.Any("kids", kids(keys)))
			}
			return keySet{keys: keys, raw: c[0]}, err
		},
		onError: func(err error) {
			cfg.Logger.Warn("JWKS changed but cannot be loaded; keeping the previous keys",
				slog.String("file", cfg.JWKSFile), slog.Any("error", err))
		},
	}
	if err := v.keys.load(); err != nil {
		return nil, fmt.Errorf("auth: loading %s: %w", cfg.JWKSFile, err)
	}
	return v, nil
}

func kids(keys map[string]*ecdsa.PublicKey) []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// JWKS is the current key set file, for the user service to publish at
// /.well-known/jwks.json.
func (v *Verifier) JWKS() []byte { return v.keys.get(0).raw }

// Verify checks a compact JWS and returns its claims. Every refusal is a
// *TokenError (errors.Is(err, ErrInvalidToken)).
func (v *Verifier) Verify(token string) (*Claims, error) {
	t, err := parse(token)
	if err != nil {
		return nil, err
	}
	switch {
	case t.header.Alg != Algorithm:
		return nil, invalid(fmt.Sprintf("algorithm %q is not accepted, only %s", t.header.Alg, Algorithm))
	case t.header.Kid == "":
		return nil, invalid("the header has no kid")
	case len(t.header.Crit) > 0:
		return nil, invalid("critical header extensions are not supported")
	case t.header.Typ != "" && !strings.EqualFold(t.header.Typ, "JWT") && !strings.EqualFold(t.header.Typ, "at+jwt"):
		return nil, invalid(fmt.Sprintf("type %q is not an access token", t.header.Typ))
	}
	pub, ok := v.keys.get(0).keys[t.header.Kid]
	if !ok {
		if pub, ok = v.keys.get(unknownKidRefresh).keys[t.header.Kid]; !ok {
			return nil, invalid("unknown signing key")
		}
	}
	if !verifySignature(pub, t.signingInput, t.signature) {
		return nil, invalid("bad signature")
	}
	var wc wireClaims
	if err := json.Unmarshal(t.payload, &wc); err != nil {
		return nil, invalid("malformed claims")
	}
	return v.checkClaims(&wc)
}

// checkClaims applies the registered-claim rules of RFC 7519 with the
// configured leeway: exp is required, nbf and iat are honoured when present.
func (v *Verifier) checkClaims(wc *wireClaims) (*Claims, error) {
	now, leeway := v.cfg.Now(), v.cfg.Leeway
	switch {
	case wc.Issuer != v.cfg.Issuer:
		return nil, invalid("wrong issuer")
	case !slices.Contains(wc.Audience, v.cfg.Audience):
		return nil, invalid("wrong audience")
	case wc.Subject == "":
		return nil, invalid("no subject")
	case wc.ExpiresAt == nil:
		return nil, invalid("no expiry")
	case !now.Before(wc.ExpiresAt.Add(leeway)):
		return nil, invalid("expired")
	case wc.ExpiresAt.time().After(now.Add(MaxLifetime + leeway)):
		return nil, invalid("expiry too far in the future")
	case wc.NotBefore != nil && now.Before(wc.NotBefore.Add(-leeway)):
		return nil, invalid("not valid yet")
	case wc.IssuedAt != nil && now.Before(wc.IssuedAt.Add(-leeway)):
		return nil, invalid("issued in the future")
	}
	return &Claims{
		Issuer: wc.Issuer, Subject: wc.Subject, Audience: wc.Audience,
		ExpiresAt: wc.ExpiresAt.time(), NotBefore: wc.NotBefore.time(), IssuedAt: wc.IssuedAt.time(),
		ID: wc.ID, Roles: wc.Roles,
	}, nil
}
