// Package store keeps users and failed logins in PostgreSQL. Its migrations
// are embedded and applied by store.Migrate (apps/pkg/store) at start.
package store

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/user/internal/domain"
)

// Migrations are the schema's migrations, for store.Migrate.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Store implements domain.Store on a connection pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ domain.Store = (*Store)(nil)

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate brings the schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pkgstore.Migrate(ctx, pool, Migrations)
}

const userColumns = `id::text, coalesce(email, ''), coalesce(username, ''), roles, created_at`

func scanUser(row pgx.Row, extra ...any) (domain.User, error) {
	var u domain.User
	var roles []string
	dest := append([]any{&u.ID, &u.Email, &u.Username, &roles, &u.CreatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return domain.User{}, err
	}
	u.Roles = make([]domain.Role, len(roles))
	for i, r := range roles {
		u.Roles[i] = domain.Role(r)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// CreateUser stores a new user.
func (s *Store) CreateUser(ctx context.Context, nu domain.NewUser) (domain.User, error) {
	roles := make([]string, len(nu.Roles))
	for i, r := range nu.Roles {
		roles[i] = string(r)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (email, username, password_hash, roles)
		VALUES (nullif($1, ''), nullif($2, ''), $3, $4)
		RETURNING `+userColumns, nu.Email, nu.Username, nu.PasswordHash, roles))
	if err = pkgstore.MapError(err); errors.Is(err, pkgstore.ErrConflict) {
		return domain.User{}, domain.ErrEmailTaken
	}
	return u, err
}

// UserByID finds a user by ID. An ID that is not a UUID finds nobody.
func (s *Store) UserByID(ctx context.Context, id string) (domain.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `
		SELECT `+userColumns+` FROM users
		WHERE id = CASE WHEN $1 ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN $1::uuid END`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, domain.ErrUserNotFound
	}
	return u, err
}

// CredentialsByLogin finds a user by email (ignoring case) or username.
func (s *Store) CredentialsByLogin(ctx context.Context, login string) (domain.Credentials, error) {
	var c domain.Credentials
	var err error
	c.User, err = scanUser(s.pool.QueryRow(ctx, `
		SELECT `+userColumns+`, password_hash FROM users
		WHERE CASE WHEN strpos($1, '@') > 0 THEN lower(email) = lower($1) ELSE username = lower($1) END`, login),
		&c.PasswordHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Credentials{}, domain.ErrUserNotFound
	}
	return c, err
}

// SetPasswordHash replaces a user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1::uuid`, id, hash)
	if err != nil {
		return pkgstore.MapError(err)
	}
	if tag.RowsAffected() == 0 {
		return domain.ErrUserNotFound
	}
	return nil
}

// LoginLock returns how long the account stays locked, by the database's clock.
func (s *Store) LoginLock(ctx context.Context, account string, maxFailures int, window time.Duration) (time.Duration, error) {
	var seconds float64
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(max(extract(epoch FROM window_start + make_interval(secs => $3) - now())), 0)::float8
		FROM login_failures
		WHERE account = $1 AND failures >= $2 AND window_start + make_interval(secs => $3) > now()`,
		account, maxFailures, window.Seconds()).Scan(&seconds)
	return time.Duration(seconds * float64(time.Second)), err
}

// RecordLoginFailure counts a failure in one atomic statement, so concurrent
// failures on several replicas are all counted. It also deletes a few
// windows that have passed, so rows for made-up accounts do not pile up.
func (s *Store) RecordLoginFailure(ctx context.Context, account string, window time.Duration) error {
	return pkgstore.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO login_failures AS f (account, failures, window_start) VALUES ($1, 1, now())
			ON CONFLICT (account) DO UPDATE SET
				failures     = CASE WHEN f.window_start + make_interval(secs => $2) <= now() THEN 1 ELSE f.failures + 1 END,
				window_start = CASE WHEN f.window_start + make_interval(secs => $2) <= now() THEN now() ELSE f.window_start END`,
			account, window.Seconds()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			DELETE FROM login_failures WHERE account IN (
				SELECT account FROM login_failures
				WHERE window_start + make_interval(secs => $1) <= now()
				ORDER BY window_start LIMIT 100 FOR UPDATE SKIP LOCKED)`, window.Seconds())
		return err
	})
}

// ResetLoginFailures forgets an account's failures.
func (s *Store) ResetLoginFailures(ctx context.Context, account string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE account = $1`, account)
	return err
}
