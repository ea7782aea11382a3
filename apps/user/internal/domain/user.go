// Package domain holds the user service's vocabulary: users, their roles,
// the rules a registration must follow, and the typed errors the HTTP layer
// maps to responses. It does no I/O.
package domain

import (
	"context"
	"time"
)

// Role is what a user may do. Tokens carry roles; the other services check them.
type Role string

// The roles. The database refuses any other value.
const (
	RoleCustomer Role = "customer"
	RoleAdmin    Role = "admin"
)

// User is an account. Customers log in with their email; the first admin
// logs in with the username from the operator's admin Secret and has no email.
type User struct {
	ID        string
	Email     string // empty for the admin
	Username  string // empty for customers
	Roles     []Role
	CreatedAt time.Time
}

// RoleNames returns the roles as strings, for tokens and responses.
func (u User) RoleNames() []string {
	out := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		out[i] = string(r)
	}
	return out
}

// Credentials are a user and the stored hash of their password.
type Credentials struct {
	User         User
	PasswordHash string
}

// NewUser is a user about to be stored.
type NewUser struct {
	Email        string
	Username     string
	PasswordHash string
	Roles        []Role
}

// Store is where users and failed logins are kept. The Postgres adapter in
// internal/store implements it.
type Store interface {
	// CreateUser stores a user; ErrEmailTaken when the email (or username)
	// is already used, compared case-insensitively.
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// UserByID returns ErrUserNotFound when there is no such user.
	UserByID(ctx context.Context, id string) (User, error)
	// CredentialsByLogin finds a user by email or username, ignoring case;
	// ErrUserNotFound when there is none.
	CredentialsByLogin(ctx context.Context, login string) (Credentials, error)
	// SetPasswordHash replaces a user's password hash.
	SetPasswordHash(ctx context.Context, id, hash string) error

	// LoginLock reports how long the account stays locked (zero: not
	// locked) after maxFailures failed logins within window.
	LoginLock(ctx context.Context, account string, maxFailures int, window time.Duration) (time.Duration, error)
	// RecordLoginFailure counts one failed login for the account in the
	// current window (a new window starts when the last one has passed).
	RecordLoginFailure(ctx context.Context, account string, window time.Duration) error
	// ResetLoginFailures forgets the account's failures after a good login.
	ResetLoginFailures(ctx context.Context, account string) error
}
