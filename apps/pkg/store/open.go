package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/pkg/internal/tlsfiles"
)

// ErrAuthentication means the server rejected the role or its password:
// retrying will not help, the credentials must be fixed.
var ErrAuthentication = errors.New("postgres rejected the credentials")

// connectTimeout bounds one connection attempt (TCP, TLS and SCRAM).
const connectTimeout = 5 * time.Second

// Open returns a connection pool once the database answers. While the
// server is unreachable or still starting it retries with backoff for up to
// cfg.StartupTimeout; it gives up at once on errors that retrying cannot fix
// (a rejected password, a missing database, a certificate that does not
// verify), with a message that says what to check.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("postgres configuration: %w", err)
	}
	pc, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("creating the postgres pool: %w", err)
	}
	deadline := time.Now().Add(cfg.StartupTimeout)
	backoff := 100 * time.Millisecond
	for {
		err := Ping(ctx, pool)
		if err == nil {
			return pool, nil
		}
		remaining := time.Until(deadline)
		if permanent(err) || ctx.Err() != nil || remaining <= 0 {
			pool.Close()
			return nil, describeConnectError(cfg, err)
		}
		// Jitter spreads out replicas that start together; the last wait
		// ends at the deadline, for one final attempt.
		wait := min(backoff/2+rand.N(backoff/2+1), remaining)
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, describeConnectError(cfg, ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Ping checks that the pool can reach the database and run a statement,
// within two seconds: the service's readiness check.
func Ping(ctx context.Context, pool *pgxpool.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return pool.Ping(ctx)
}

func poolConfig(cfg Config) (*pgxpool.Config, error) {
	// Only what a connection string must carry goes through one; TLS and the
	// password are set on the parsed configuration.
	dsn := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable",
		quoteDSN(cfg.Host), cfg.Port, quoteDSN(cfg.Database), quoteDSN(cfg.User))
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres configuration: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = connectTimeout
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	if cfg.ApplicationName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	}

	if cfg.Password == "" && cfg.PasswordFile != "" {
		if cfg.Password, err = ReadPasswordFile(cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("postgres password: %w", err)
		}
	}
	pc.ConnConfig.Password = cfg.Password
	if cfg.PasswordFile != "" {
		pc.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
			// Keep the last good password when the file is mid-update.
			if pw, err := ReadPasswordFile(cfg.PasswordFile); err == nil {
				cc.Password = pw
			}
			return nil
		}
	}

	mode := map[string]tlsfiles.Mode{SSLVerifyFull: tlsfiles.VerifyFull, SSLVerifyCA: tlsfiles.VerifyCA, SSLRequire: tlsfiles.NoVerify}
	if m, ok := mode[cfg.SSLMode]; ok {
		tc, err := tlsfiles.ClientConfig(cfg.TLSDir, cfg.Host, m)
		if err != nil {
			return nil, fmt.Errorf("postgres TLS (%s %s): %w", EnvTLSDir, cfg.TLSDir, err)
		}
		pc.ConnConfig.TLSConfig = tc
	}
	return pc, nil
}

// permanent reports errors a retry cannot fix.
func permanent(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", // invalid_password
			"28000", // invalid_authorization_specification: no pg_hba entry
			"3D000", // invalid_catalog_name: no such database
			"42501": // insufficient_privilege: no CONNECT on the database
			return true
		}
		return false
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}

func describeConnectError(cfg Config, err error) error {
	where := fmt.Sprintf("connecting to postgres at %s as %q to database %q",
		net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), cfg.User, cfg.Database)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01":
			from := "Config.Password"
			if cfg.PasswordFile != "" {
				from = cfg.PasswordFile + " (" + EnvPasswordFile + ")"
			}
			return fmt.Errorf("%s: %w: the password from %s is wrong or the role does not exist: %w", where, ErrAuthentication, from, err)
		case "28000":
			return fmt.Errorf("%s: %w: pg_hba.conf has no rule for this connection (the server accepts TLS only; %s is %s): %w", where, ErrAuthentication, EnvSSLMode, cfg.SSLMode, err)
		case "3D000":
			return fmt.Errorf("%s: the database does not exist: %w", where, err)
		}
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%s: the server certificate is not signed by the CA in %s/ca.crt: %w", where, cfg.TLSDir, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%s: the server certificate does not name %q: %w", where, cfg.Host, err)
	case permanent(err), errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: gave up after %s: %w", where, cfg.StartupTimeout, err)
}

// quoteDSN quotes a keyword/value connection string value.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
