package redisx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/internal/secretfile"
)

// Environment variables read by FromEnv. The operator sets the Sentinel
// ones, the user and the password file on the services that use Redis
// (internal/builder/services.go); SHOPSTACK_REDIS_ADDR is for running a
// service outside a cluster against a single server.
const (
	EnvAddr         = "SHOPSTACK_REDIS_ADDR"
	EnvSentinels    = "SHOPSTACK_REDIS_SENTINELS"
	EnvMasterName   = "SHOPSTACK_REDIS_MASTER_NAME"
	EnvUser         = "SHOPSTACK_REDIS_USER"
	EnvPasswordFile = "SHOPSTACK_REDIS_PASSWORD_FILE"
	EnvTLSDir       = "SHOPSTACK_TLS_DIR"
)

// Defaults applied by FromEnv and by Open for zero fields.
const (
	DefaultMasterName   = "shopstack"
	DefaultTLSDir       = "/etc/shopstack/tls"
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = time.Second
	DefaultWriteTimeout = time.Second
)

// Config says how a service reaches Redis. Exactly one of Addr and
// Sentinels is set.
type Config struct {
	// Addr is host:port of a single server.
	Addr string
	// Sentinels are host:port of the Sentinels; the client asks them for
	// the master and follows it through failovers.
	Sentinels []string
	// MasterName is the name the Sentinels monitor the master under.
	MasterName string
	// User is the service's ACL user.
	User string
	// Password is used as is; when empty it is read from PasswordFile.
	Password string `json:"-"`
	// PasswordFile is also re-read for every new connection, so a rotated
	// password reaches the client without a restart.
	PasswordFile string
	// TLSDir holds ca.crt, which every server and Sentinel certificate must
	// chain to, and the service's tls.crt and tls.key: the Sentinels
	// require a client certificate.
	TLSDir string

	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is go-redis's default (10 per CPU) when zero.
	PoolSize int
}

// FromEnv reads the configuration through lookup (os.LookupEnv in a
// service), including the password from the file
// SHOPSTACK_REDIS_PASSWORD_FILE names. Every problem is reported, each naming
// its variable or file.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	cfg := Config{
		Addr:         get(EnvAddr),
		MasterName:   get(EnvMasterName),
		User:         get(EnvUser),
		PasswordFile: get(EnvPasswordFile),
		TLSDir:       get(EnvTLSDir),
	}
	for s := range strings.SplitSeq(get(EnvSentinels), ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Sentinels = append(cfg.Sentinels, s)
		}
	}
	var errs []error
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
		return Config{}, fmt.Errorf("redis configuration: %w", err)
	}
	return cfg, nil
}

// ReadPasswordFile returns the content of a mounted password file without
// its trailing newline. An empty password is an error.
func ReadPasswordFile(path string) (string, error) { return secretfile.ReadPassword(path) }

func (c Config) withDefaults() Config {
	if c.MasterName == "" && len(c.Sentinels) > 0 {
		c.MasterName = DefaultMasterName
	}
	if c.TLSDir == "" {
		c.TLSDir = DefaultTLSDir
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	switch {
	case c.Addr == "" && len(c.Sentinels) == 0:
		errs = append(errs, fmt.Errorf("%s or %s: one is required", EnvSentinels, EnvAddr))
	case c.Addr != "" && len(c.Sentinels) > 0:
		errs = append(errs, fmt.Errorf("%s and %s: set only one", EnvSentinels, EnvAddr))
	}
	for _, a := range append([]string{c.Addr}, c.Sentinels...) {
		if a == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			name := EnvSentinels
			if a == c.Addr {
				name = EnvAddr
			}
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", name, a))
		}
	}
	if c.User != "" && c.Password == "" && c.PasswordFile == "" {
		errs = append(errs, fmt.Errorf("%s: required with %s", EnvPasswordFile, EnvUser))
	}
	ca := filepath.Join(c.TLSDir, "ca.crt")
	if _, err := os.Stat(ca); err != nil {
		errs = append(errs, fmt.Errorf("%s: the CA bundle %s is needed to verify Redis: %w", EnvTLSDir, ca, unwrapPath(err)))
	}
	return errors.Join(errs...)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
