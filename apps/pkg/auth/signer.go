package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultTokenTTL keeps access tokens short-lived: there is no revocation,
// and a rotated-out key leaves the JWKS after the longest token lifetime.
const DefaultTokenTTL = 15 * time.Minute

// SignerConfig configures a Signer.
type SignerConfig struct {
	KeyFile   string // SHOPSTACK_JWT_SIGNING_KEY_FILE: PKCS #8 PEM, ECDSA P-256
	KeyIDFile string // SHOPSTACK_JWT_KEY_ID_FILE; empty: the kid is derived with KeyID
	Issuer    string
	Audience  string

	TTL            time.Duration    // zero: DefaultTokenTTL
	ReloadInterval time.Duration    // zero: DefaultReloadInterval
	Now            func() time.Time // nil: time.Now
	Logger         *slog.Logger     // nil: slog.Default()
}

// Signer issues access tokens with the operator-managed key. It re-reads the
// key files when they change, so a rotation reaches the user service without
// a restart.
type Signer struct {
	cfg SignerConfig
	key *watched[signingKey]
}

type signingKey struct {
	key *ecdsa.PrivateKey
	kid string
}

// Token is an issued access token.
type Token struct {
	Value     string
	ExpiresAt time.Time
	KeyID     string
}

// NewSigner loads the signing key.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if cfg.KeyFile == "" || cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("auth: a signer needs a key file, an issuer and an audience")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTokenTTL
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
	paths := []string{cfg.KeyFile}
	if cfg.KeyIDFile != "" {
		paths = append(paths, cfg.KeyIDFile)
	}
	s := &Signer{cfg: cfg}
	s.key = &watched[signingKey]{
		paths: paths, interval: cfg.ReloadInterval, now: cfg.Now,
		build: func(c [][]byte) (signingKey, error) {
			key, err := ParseSigningKey(c[0])
			if err != nil {
				return signingKey{}, err
			}
			var kid string
			if len(c) > 1 {
				kid = string(c[1])
			}
			if kid == "" {
				if kid, err = KeyID(&key.PublicKey); err != nil {
					return signingKey{}, err
				}
			}
			cfg.Logger.Info("token signing key loaded", slog.String("kid", kid))
			return signingKey{key: key, kid: kid}, nil
		},
		onError: func(err error) {
			cfg.Logger.Warn("signing key changed but cannot be loaded; keeping the previous key", slog.Any("error", err))
		},
	}
	if err := s.key.load(); err != nil {
		return nil, fmt.Errorf("auth: loading the signing key: %w", err)
	}
	return s, nil
}

// Issue returns a token for subject with roles, valid for the configured TTL.
func (s *Signer) Issue(subject string, roles []string) (Token, error) {
	if subject == "" {
		return Token{}, errors.New("auth: a token needs a subject")
	}
	k := s.key.get(0)
	now := s.cfg.Now().Truncate(time.Second)
	exp := now.Add(s.cfg.TTL)
	value, err := sign(k.key, header{Alg: Algorithm, Kid: k.kid, Typ: "JWT"}, wireClaims{
		Issuer: s.cfg.Issuer, Subject: subject, Audience: audience{s.cfg.Audience},
		ExpiresAt: date(exp), IssuedAt: date(now), ID: rand.Text(), Roles: roles,
	})
	if err != nil {
		return Token{}, fmt.Errorf("auth: signing a token: %w", err)
	}
	return Token{Value: value, ExpiresAt: exp, KeyID: k.kid}, nil
}
