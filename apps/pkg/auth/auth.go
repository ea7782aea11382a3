// Package auth verifies and issues the end-user access tokens of a Shop:
// JWTs signed with ES256 by the user service, whose public keys the operator
// publishes as a JWKS file mounted in every pod. Only ES256 is accepted, so
// the classic algorithm-confusion attacks (alg "none", HS256 keyed with the
// public key) have nothing to work with.
package auth

import (
	"slices"
	"time"
)

// Algorithm is the only JWS algorithm issued and accepted.
const Algorithm = "ES256"

// Claims are what a verified token says about its bearer.
type Claims struct {
	Issuer    string
	Subject   string // the user ID; never empty
	Audience  []string
	ExpiresAt time.Time
	NotBefore time.Time // zero when absent
	IssuedAt  time.Time // zero when absent
	ID        string    // jti; empty when absent
	Roles     []string
}

// HasRole reports whether the bearer has role.
func (c *Claims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// TokenError says why a token was refused, in terms safe to show its bearer.
type TokenError struct {
	Reason string
}

func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// Is makes every TokenError match ErrInvalidToken.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// ErrInvalidToken matches every refusal of a token: errors.Is(err, ErrInvalidToken).
var ErrInvalidToken = &TokenError{Reason: "refused"}

func invalid(reason string) error { return &TokenError{Reason: reason} }
