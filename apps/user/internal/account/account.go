// Package account is what the user service does: register customers, log
// users in (with failed logins limited per account), and create the first
// admin from the operator's Secret. It ties the domain rules to a store, a
// password hasher and a token signer; the HTTP layer only translates.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/user/internal/domain"
	"github.com/shopstack/shopstack/apps/user/internal/password"
)

// Login throttling defaults: five failures in fifteen minutes lock an
// account until the fifteen minutes have passed.
const (
	DefaultMaxFailures   = 5
	DefaultLockoutWindow = 15 * time.Minute
	// maxLoginLen bounds what an unauthenticated client can make us store.
	maxLoginLen = 320
)

// Hasher hashes and verifies passwords (package password).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (bool, error)
	DummyVerify(ctx context.Context, password string) error
}

// Signer issues access tokens (auth.Signer).
type Signer interface {
	Issue(subject string, roles []string) (auth.Token, error)
}

// Config configures a Service.
type Config struct {
	Store  domain.Store
	Hasher Hasher
	Signer Signer

	MaxFailures   int           // zero: DefaultMaxFailures
	LockoutWindow time.Duration // zero: DefaultLockoutWindow

	Registerer prometheus.Registerer // nil: metrics are not exported
	Logger     *slog.Logger          // nil: slog.Default()
}

// Service carries out the user service's operations.
type Service struct {
	cfg     Config
	metrics *metrics
}

// New returns a Service and registers its metrics.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Hasher == nil || cfg.Signer == nil {
		return nil, errors.New("account: a store, a hasher and a signer are required")
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.LockoutWindow <= 0 {
		cfg.LockoutWindow = DefaultLockoutWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, metrics: m}, nil
}

// Register creates a customer account.
func (s *Service) Register(ctx context.Context, email, pw string) (domain.User, error) {
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return domain.User{}, err
	}
	if err := domain.ValidatePassword(pw, email); err != nil {
		return domain.User{}, err
	}
	hash, err := s.hash(ctx, pw)
	if err != nil {
		return domain.User{}, err
	}
	u, err := s.cfg.Store.CreateUser(ctx, domain.NewUser{Email: email, PasswordHash: hash, Roles: []domain.Role{domain.RoleCustomer}})
	if err != nil {
		return domain.User{}, err
	}
	s.metrics.registered.Inc()
	return u, nil
}

// Login results, the values of logins_total{result}.
const (
	resultSuccess = "success"
	resultInvalid = "invalid_grant"
	resultLocked  = "locked"
	resultError   = "error"
)

// Login checks a login (email or admin username) and password and issues an
// access token. Every failure costs one hash, found account or not, so the
// answer's timing does not tell which accounts exist; failures count
// against the account, and a locked account is refused even with the right
// password until its window has passed.
func (s *Service) Login(ctx context.Context, login, pw string) (auth.Token, domain.User, error) {
	tok, u, err := s.login(ctx, login, pw)
	switch {
	case err == nil:
		s.metrics.logins.WithLabelValues(resultSuccess).Inc()
	case errors.Is(err, domain.ErrInvalidCredentials):
		s.metrics.logins.WithLabelValues(resultInvalid).Inc()
	case errors.Is(err, domain.ErrLocked):
		s.metrics.logins.WithLabelValues(resultLocked).Inc()
	default:
		s.metrics.logins.WithLabelValues(resultError).Inc()
	}
	return tok, u, err
}

func (s *Service) login(ctx context.Context, login, pw string) (auth.Token, domain.User, error) {
	if len(login) > maxLoginLen || len(pw) > 4*domain.MaxPasswordLen {
		// No account has such a login or password; spend the same time anyway.
		if err := s.dummy(ctx, pw); err != nil {
			return auth.Token{}, domain.User{}, err
		}
		return auth.Token{}, domain.User{}, domain.ErrInvalidCredentials
	}
	key := domain.LoginKey(login)
	locked, err := s.cfg.Store.LoginLock(ctx, key, s.cfg.MaxFailures, s.cfg.LockoutWindow)
	if err != nil {
		return auth.Token{}, domain.User{}, fmt.Errorf("reading failed logins: %w", err)
	}
	if locked > 0 {
		return auth.Token{}, domain.User{}, domain.Locked(locked)
	}

	creds, err := s.cfg.Store.CredentialsByLogin(ctx, login)
	ok := false
	switch {
	case errors.Is(err, domain.ErrUserNotFound):
		err = s.dummy(ctx, pw)
	case err != nil:
		return auth.Token{}, domain.User{}, fmt.Errorf("finding the account: %w", err)
	default:
		ok, err = s.cfg.Hasher.Verify(ctx, pw, creds.PasswordHash)
		if errors.Is(err, password.ErrBusy) {
			return auth.Token{}, domain.User{}, domain.ErrBusy
		}
	}
	if err != nil {
		return auth.Token{}, domain.User{}, err
	}
	if !ok {
		if err := s.cfg.Store.RecordLoginFailure(ctx, key, s.cfg.LockoutWindow); err != nil {
			return auth.Token{}, domain.User{}, fmt.Errorf("recording a failed login: %w", err)
		}
		return auth.Token{}, domain.User{}, domain.ErrInvalidCredentials
	}
	if err := s.cfg.Store.ResetLoginFailures(ctx, key); err != nil {
		return auth.Token{}, domain.User{}, fmt.Errorf("resetting failed logins: %w", err)
	}
	tok, err := s.cfg.Signer.Issue(creds.User.ID, creds.User.RoleNames())
	if err != nil {
		return auth.Token{}, domain.User{}, err
	}
	return tok, creds.User, nil
}

// dummy spends the time of a verification that fails.
func (s *Service) dummy(ctx context.Context, pw string) error {
	if err := s.cfg.Hasher.DummyVerify(ctx, pw); err != nil {
		if errors.Is(err, password.ErrBusy) {
			return domain.ErrBusy
		}
		return err
	}
	return nil
}

// User returns the user with id.
func (s *Service) User(ctx context.Context, id string) (domain.User, error) {
	return s.cfg.Store.UserByID(ctx, id)
}

// EnsureAdmin makes sure the admin named username exists with pw, the
// content of the operator's admin Secret. It is safe to run on every replica
// at once: the unique username lets one insert win and the others find it.
// The Secret is the source of truth, so a password changed there replaces
// the stored one. It reports whether it created or updated the admin.
func (s *Service) EnsureAdmin(ctx context.Context, username, pw string) (changed bool, err error) {
	if err := domain.ValidateUsername(username); err != nil {
		return false, fmt.Errorf("the admin username: %w", err)
	}
	if err := domain.ValidatePassword(pw, ""); err != nil {
		return false, fmt.Errorf("the admin password: %w", err)
	}
	creds, err := s.cfg.Store.CredentialsByLogin(ctx, username)
	switch {
	case errors.Is(err, domain.ErrUserNotFound):
		hash, err := s.hash(ctx, pw)
		if err != nil {
			return false, err
		}
		_, err = s.cfg.Store.CreateUser(ctx, domain.NewUser{Username: username, PasswordHash: hash, Roles: []domain.Role{domain.RoleAdmin}})
		if errors.Is(err, domain.ErrEmailTaken) {
			return false, nil // another replica created it a moment ago
		}
		if err != nil {
			return false, fmt.Errorf("creating the admin: %w", err)
		}
		s.cfg.Logger.InfoContext(ctx, "admin created", slog.String("username", username))
		return true, nil
	case err != nil:
		return false, fmt.Errorf("looking up the admin: %w", err)
	}
	ok, err := s.cfg.Hasher.Verify(ctx, pw, creds.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return false, err
	}
	if ok {
		return false, nil
	}
	hash, err := s.hash(ctx, pw)
	if err != nil {
		return false, err
	}
	if err := s.cfg.Store.SetPasswordHash(ctx, creds.User.ID, hash); err != nil {
		return false, fmt.Errorf("updating the admin password: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "admin password updated from the admin Secret", slog.String("username", username))
	return true, nil
}

func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	h, err := s.cfg.Hasher.Hash(ctx, pw)
	if errors.Is(err, password.ErrBusy) {
		return "", domain.ErrBusy
	}
	return h, err
}
