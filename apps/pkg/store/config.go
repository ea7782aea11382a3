package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/internal/secretfile"
)

// Environment variables read by FromEnv. The operator sets the first five on
// every service (internal/builder/services.go); the rest have defaults.
const (
	EnvHost             = "SHOPSTACK_POSTGRES_HOST"
	EnvPort             = "SHOPSTACK_POSTGRES_PORT"
	EnvDatabase         = "SHOPSTACK_POSTGRES_DATABASE"
	EnvUser             = "SHOPSTACK_POSTGRES_USER"
	EnvPasswordFile     = "SHOPSTACK_POSTGRES_PASSWORD_FILE"
	EnvSSLMode          = "SHOPSTACK_POSTGRES_SSLMODE"
	EnvMaxConns         = "SHOPSTACK_POSTGRES_MAX_CONNS"
	EnvStatementTimeout = "SHOPSTACK_POSTGRES_STATEMENT_TIMEOUT"
	EnvStartupTimeout   = "SHOPSTACK_POSTGRES_STARTUP_TIMEOUT"
	EnvTLSDir           = "SHOPSTACK_TLS_DIR"
	EnvService          = "SHOPSTACK_SERVICE"
)

// SSL modes, with libpq's meanings. Only VerifyFull belongs in a cluster;
// the others exist for local experiments.
const (
	SSLVerifyFull = "verify-full"
	SSLVerifyCA   = "verify-ca"
	SSLRequire    = "require"
	SSLDisable    = "disable"
)

// Defaults applied by FromEnv and by Open for zero fields.
const (
	DefaultPort             = 5432
	DefaultTLSDir           = "/etc/shopstack/tls"
	DefaultMaxConns         = 10
	DefaultStatementTimeout = 5 * time.Second
	DefaultStartupTimeout   = 60 * time.Second
)

// Config says how a service reaches its database.
type Config struct {
	Host     string
	Port     int
	Database string
	User     string
	// Password is used as is; when empty it is read from PasswordFile.
	Password string `json:"-"`
	// PasswordFile is also re-read for every new connection, so a rotated
	// password in a mounted Secret reaches the pool without a restart.
	PasswordFile string
	// TLSDir holds ca.crt, which the server certificate must chain to, and
	// optionally the service's tls.crt and tls.key, presented as client
	// certificate.
	TLSDir string
	// SSLMode is verify-full (the default), verify-ca, require or disable.
	SSLMode string
	// MaxConns caps the pool.
	MaxConns int32
	// StatementTimeout bounds every statement on the server side, so a
	// stuck query cannot hold a connection (and a request) forever.
	// Migrations run without it.
	StatementTimeout time.Duration
	// StartupTimeout is how long Open keeps trying while the database is
	// unreachable or starting: Postgres may come up after the service.
	StartupTimeout time.Duration
	// ApplicationName shows in pg_stat_activity; FromEnv uses the service.
	ApplicationName string
}

// FromEnv reads the configuration through lookup (os.LookupEnv in a
// service), reading the password from the file SHOPSTACK_POSTGRES_PASSWORD_FILE
// names. Every problem is reported, each naming its variable or file.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var errs []error
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	required := func(name string) string {
		v := get(name)
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required but not set", name))
		}
		return v
	}
	cfg := Config{
		Host:            required(EnvHost),
		Database:        required(EnvDatabase),
		User:            required(EnvUser),
		PasswordFile:    required(EnvPasswordFile),
		TLSDir:          get(EnvTLSDir),
		SSLMode:         get(EnvSSLMode),
		ApplicationName: get(EnvService),
	}
	cfg.Port = envInt(get, EnvPort, DefaultPort, 1, &errs)
	cfg.MaxConns = int32(envInt(get, EnvMaxConns, DefaultMaxConns, 1, &errs))
	cfg.StatementTimeout = envDuration(get, EnvStatementTimeout, DefaultStatementTimeout, &errs)
	cfg.StartupTimeout = envDuration(get, EnvStartupTimeout, DefaultStartupTimeout, &errs)
	if cfg.PasswordFile != "" {
		pw, err := ReadPasswordFile(cfg.PasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvPasswordFile, err))
		}
		cfg.Password = pw
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("postgres configuration: %w", err)
	}
	return cfg, nil
}

// ReadPasswordFile returns the content of a mounted password file without
// its trailing newline. An empty password is an error.
func ReadPasswordFile(path string) (string, error) { return secretfile.ReadPassword(path) }

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.TLSDir == "" {
		c.TLSDir = DefaultTLSDir
	}
	if c.SSLMode == "" {
		c.SSLMode = SSLVerifyFull
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.StartupTimeout == 0 {
		c.StartupTimeout = DefaultStartupTimeout
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	switch c.SSLMode {
	case SSLVerifyFull, SSLVerifyCA, SSLRequire, SSLDisable:
	default:
		errs = append(errs, fmt.Errorf("%s: must be one of verify-full, verify-ca, require, disable, got %q", EnvSSLMode, c.SSLMode))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("%s: %d is not a TCP port", EnvPort, c.Port))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("%s: must be at least 1, got %d", EnvMaxConns, c.MaxConns))
	}
	if c.SSLMode == SSLVerifyFull || c.SSLMode == SSLVerifyCA {
		ca := filepath.Join(c.TLSDir, "ca.crt")
		if _, err := os.Stat(ca); err != nil {
			errs = append(errs, fmt.Errorf("%s: the CA bundle %s is needed to verify the server: %w", EnvTLSDir, ca, unwrapPath(err)))
		}
	}
	return errors.Join(errs...)
}

func envInt(get func(string) string, name string, def, least int, errs *[]error) int {
	v := get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		*errs = append(*errs, fmt.Errorf("%s: must be an integer, got %q", name, v))
		return def
	case n < least:
		*errs = append(*errs, fmt.Errorf("%s: must be at least %d, got %d", name, least, n))
		return def
	}
	return n
}

func envDuration(get func(string) string, name string, def time.Duration, errs *[]error) time.Duration {
	v := get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s: must be a positive duration such as 5s, got %q", name, v))
		return def
	}
	return d
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
