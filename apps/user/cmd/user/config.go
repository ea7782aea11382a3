package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/edge"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	"github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/user/internal/account"
	"github.com/shopstack/shopstack/apps/user/internal/password"
)

// The user service's own variables. The operator sets the first three
// (internal/builder/services.go); the others have defaults.
const (
	envSigningKeyFile = "SHOPSTACK_JWT_SIGNING_KEY_FILE"
	envKeyIDFile      = "SHOPSTACK_JWT_KEY_ID_FILE"
	envAdminDir       = "SHOPSTACK_ADMIN_DIR"
	envHashBudget     = "SHOPSTACK_HASH_MEMORY_BUDGET"
	envMaxFailures    = "SHOPSTACK_LOGIN_MAX_FAILURES"
	envLockoutWindow  = "SHOPSTACK_LOGIN_LOCKOUT_WINDOW"
)

// Where the operator mounts the files (internal/builder/services.go).
const (
	defaultSigningKeyFile = "/etc/shopstack/jwt/signing.key"
	defaultAdminDir       = "/etc/shopstack/admin"
)

// Config is everything the user service reads at start.
type Config struct {
	config.Common
	SigningKeyFile string
	KeyIDFile      string // empty: the kid is derived from the key
	AdminUsername  string
	AdminPassword  string `json:"-"`
	HashBudget     int64
	MaxFailures    int
	LockoutWindow  time.Duration
	Postgres       store.Config
	// Redis, when configured, backs the per-client rate limit shared by
	// the replicas (the operator always configures it).
	Redis     *redisx.Config
	RateLimit redisx.Limit
	Edge      edge.Config
}

// loadConfig reads the configuration through lookup and reports every
// problem at once, each naming its variable.
func loadConfig(lookup config.Lookup) (Config, error) {
	r := config.NewReader(lookup)
	c := Config{
		Common:         r.Common(),
		SigningKeyFile: r.File(envSigningKeyFile, defaultSigningKeyFile),
		HashBudget:     r.Bytes(envHashBudget, password.DefaultMemoryBudget),
		MaxFailures:    r.Int(envMaxFailures, account.DefaultMaxFailures),
		LockoutWindow:  r.Duration(envLockoutWindow, account.DefaultLockoutWindow),
	}
	if r.String(envKeyIDFile, "") != "" {
		c.KeyIDFile = r.File(envKeyIDFile, "")
	}
	if perHash := int64(password.DefaultParams.Memory) << 10; c.HashBudget < perHash {
		r.Fail(envHashBudget, "must hold at least one password hash (%d bytes), got %d", perHash, c.HashBudget)
	}
	if c.MaxFailures < 1 {
		r.Fail(envMaxFailures, "must be at least 1, got %d", c.MaxFailures)
	}
	if c.LockoutWindow < time.Second {
		r.Fail(envLockoutWindow, "must be at least 1s, got %s", c.LockoutWindow)
	}
	adminDir := r.Dir(envAdminDir, defaultAdminDir)
	var errs []error
	if adminDir != "" {
		var err error
		if c.AdminUsername, err = readSecretFile(filepath.Join(adminDir, "username")); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envAdminDir, err))
		}
		if c.AdminPassword, err = readSecretFile(filepath.Join(adminDir, "password")); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envAdminDir, err))
		}
	}
	pg, err := store.FromEnv(func(name string) (string, bool) { return lookup(name) })
	if err != nil {
		errs = append(errs, err)
	}
	c.Postgres = pg
	sentinels, _ := lookup(redisx.EnvSentinels)
	redisAddr, _ := lookup(redisx.EnvAddr)
	if sentinels != "" || redisAddr != "" {
		rc, err := redisx.FromEnv(func(name string) (string, bool) { return lookup(name) })
		if err != nil {
			errs = append(errs, err)
		}
		c.Redis = &rc
	}
	if c.RateLimit, err = redisx.LimitFromEnv(func(name string) (string, bool) { return lookup(name) }); err != nil {
		errs = append(errs, err)
	}
	if c.Edge, err = edge.FromEnv(func(name string) (string, bool) { return lookup(name) }); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(append([]error{r.Err()}, errs...)...); err != nil {
		return Config{}, fmt.Errorf("configuration:\n%w", err)
	}
	return c, nil
}

// readSecretFile reads a mounted Secret key without a trailing newline.
func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}
