package testenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresSuperuser is the database superuser the harness connects as, over
// the server's Unix socket.
const PostgresSuperuser = "postgres"

// PostgresOptions tune a test server. The zero value is a working server.
type PostgresOptions struct {
	// CA signs the server certificate; nil creates a new CA.
	CA *CA
	// Settings are extra server settings (postgres -c name=value); they
	// override the defaults, e.g. {"deadlock_timeout": "100ms"}.
	Settings map[string]string
	// HBA lines are placed before the default pg_hba.conf rules.
	HBA []string
}

// Postgres is a running test server listening on 127.0.0.1 with TLS
// required for every TCP connection.
type Postgres struct {
	// Host and Port are the TCP address (Host is always 127.0.0.1).
	Host string
	Port int
	// CA signed the server certificate; use it to mint client certificates.
	CA *CA
	// Dir holds the data directory, the socket, the TLS files and the log.
	Dir string

	proc     *process
	stopOnce sync.Once
}

// pgHBA mirrors the operator's pg_hba.conf (internal/builder/data.go): TLS
// and SCRAM for every network client, here limited to loopback. The local
// socket trusts only the harness superuser; the socket directory is readable
// by the server's OS user (and root) alone.
const pgHBA = `local   all          postgres                   trust
hostssl replication  replication  127.0.0.1/32  scram-sha-256
hostssl all          all          127.0.0.1/32  scram-sha-256
`

// StartPostgres starts a server for the test and stops it (and deletes its
// files) in t.Cleanup. On a failed test the end of the server log is logged.
func StartPostgres(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	skipShort(t)
	p, err := NewPostgres(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log (last lines):\n%s", p.LogTail(40))
		}
		p.Stop()
	})
	return p
}

// NewPostgres starts a server that the caller must Stop, for a TestMain that
// shares one server between the tests of a package.
func NewPostgres(opts PostgresOptions) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	cred, uid, gid, err := serverIdentity("postgres")
	if err != nil {
		return nil, err
	}
	ca := opts.CA
	if ca == nil {
		if ca, err = newCA(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "shopstack-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Host: "127.0.0.1", CA: ca, Dir: dir}
	ok := false
	defer func() {
		if !ok {
			p.Stop()
		}
	}()
	if err := p.prepare(bin, opts, cred, uid, gid); err != nil {
		return nil, err
	}

	// The port was free when chosen; another process may bind it before the
	// server does, so a failed bind gets a new port.
	for attempt := 1; ; attempt++ {
		if p.Port, err = freePort(); err != nil {
			return nil, err
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), p.args(opts)...)
		cmd.Env = []string{"LC_ALL=C", "TZ=UTC", "PATH=" + bin + ":/usr/bin:/bin"}
		if p.proc, err = startProcess("postgres", cmd, p.logPath(), cred); err != nil {
			return nil, err
		}
		err = p.waitReady(30 * time.Second)
		if err == nil {
			ok = true
			return p, nil
		}
		bindFailed := p.proc.exited() && logContains(p.logPath(), "could not bind", "Address already in use")
		p.proc.stop(5*time.Second, syscall.SIGQUIT)
		if !bindFailed || attempt == 3 {
			return nil, fmt.Errorf("%w\npostgres log:\n%s", err, p.LogTail(30))
		}
	}
}

func (p *Postgres) dataDir() string   { return filepath.Join(p.Dir, "data") }
func (p *Postgres) socketDir() string { return filepath.Join(p.Dir, "run") }
func (p *Postgres) tlsDir() string    { return filepath.Join(p.Dir, "tls") }
func (p *Postgres) logPath() string   { return filepath.Join(p.Dir, "postgres.log") }

// CAFile is the path of the CA certificate (sslrootcert for clients).
func (p *Postgres) CAFile() string { return filepath.Join(p.tlsDir(), "ca.crt") }

// Addr is host:port.
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// prepare lays out the directories, TLS files and pg_hba.conf, owned by the
// server's OS user, and runs initdb.
func (p *Postgres) prepare(bin string, opts PostgresOptions, cred *syscall.Credential, uid, gid int) error {
	for _, d := range []string{p.socketDir(), p.tlsDir()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	server, err := p.CA.issue(CertSpec{CommonName: "127.0.0.1", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return err
	}
	if err := p.CA.writeTLSDir(p.tlsDir(), server); err != nil {
		return err
	}
	hba := strings.Join(opts.HBA, "\n")
	if hba != "" {
		hba += "\n"
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "pg_hba.conf"), []byte(hba+pgHBA), 0o600); err != nil {
		return err
	}
	if err := chownTree(p.Dir, uid, gid); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"--pgdata", p.dataDir(), "--username", PostgresSuperuser, "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	cmd.Env = []string{"LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

func (p *Postgres) args(opts PostgresOptions) []string {
	settings := map[string]string{
		"listen_addresses":        p.Host,
		"port":                    strconv.Itoa(p.Port),
		"unix_socket_directories": p.socketDir(),
		"unix_socket_permissions": "0700",
		"hba_file":                filepath.Join(p.Dir, "pg_hba.conf"),
		"ssl":                     "on",
		"ssl_cert_file":           filepath.Join(p.tlsDir(), "tls.crt"),
		"ssl_key_file":            filepath.Join(p.tlsDir(), "tls.key"),
		"ssl_ca_file":             p.CAFile(),
		"password_encryption":     "scram-sha-256",
		// Durability is worth nothing in a throwaway server; speed is.
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"shared_buffers":     "8MB",
		"max_connections":    "100",
		"log_min_messages":   "warning",
		"log_line_prefix":    "%m [%p] %q%u@%d ",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", p.dataDir()}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}
	return args
}

func (p *Postgres) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if p.proc.exited() {
			return fmt.Errorf("postgres exited while starting: %v", p.proc.waitErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, p.SuperuserDSN())
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("postgres not ready after %s: %v", timeout, lastErr)
}

// SuperuserDSN connects as the superuser over the Unix socket (trusted,
// no TLS): for the harness and for test setup, never for code under test.
func (p *Postgres) SuperuserDSN() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable connect_timeout=5",
		p.socketDir(), p.Port, PostgresSuperuser)
}

// DSN is a TCP connection string as a service would use: TLS with the
// server certificate verified against the CA and its host name, and SCRAM.
func (p *Postgres) DSN(user, password, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     p.Addr(),
		Path:     "/" + database,
		RawQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {p.CAFile()}, "connect_timeout": {"5"}}.Encode(),
	}
	return u.String()
}

// CreateRoleAndDB creates a login role with the password and a database it
// owns that no one else may connect to: what the operator's bootstrap
// script does for each service.
func (p *Postgres) CreateRoleAndDB(name, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.SuperuserDSN())
	if err != nil {
		return fmt.Errorf("connecting as superuser: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	ident := pgx.Identifier{name}.Sanitize()
	for _, stmt := range []string{
		"CREATE ROLE " + ident + " LOGIN PASSWORD " + quoteLiteral(password),
		"CREATE DATABASE " + ident + " OWNER " + ident + " STRATEGY = FILE_COPY",
		"REVOKE ALL ON DATABASE " + ident + " FROM PUBLIC",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("creating role and database %q: %w", name, err)
		}
	}
	return nil
}

// ServiceEnv writes password to a file and returns the SHOPSTACK_POSTGRES_*
// variables the operator would give a service whose role and database are
// both name. The TLS directory (SHOPSTACK_TLS_DIR) is the caller's: see
// CA.TLSDir.
func (p *Postgres) ServiceEnv(t testing.TB, name, password string) map[string]string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"SHOPSTACK_POSTGRES_HOST":          p.Host,
		"SHOPSTACK_POSTGRES_PORT":          strconv.Itoa(p.Port),
		"SHOPSTACK_POSTGRES_DATABASE":      name,
		"SHOPSTACK_POSTGRES_USER":          name,
		"SHOPSTACK_POSTGRES_PASSWORD_FILE": file,
	}
}

// LogTail returns the last lines of the server log.
func (p *Postgres) LogTail(lines int) string { return tail(p.logPath(), lines) }

// Stop shuts the server down (fast shutdown, then immediate, then kill) and
// deletes its files. It is safe to call more than once.
func (p *Postgres) Stop() {
	p.stopOnce.Do(func() {
		if p.proc != nil {
			p.proc.stop(10*time.Second, syscall.SIGINT, syscall.SIGQUIT)
		}
		_ = os.RemoveAll(p.Dir)
	})
}

// pgBinDir finds the directory holding initdb and postgres.
func pgBinDir() (string, error) {
	if d := os.Getenv("SHOPSTACK_TEST_PG_BINDIR"); d != "" {
		return d, nil
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(matches, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", errors.New("PostgreSQL binaries not found: install the postgresql package or set SHOPSTACK_TEST_PG_BINDIR")
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func chownTree(root string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real server processes; skipped under -short")
	}
}
