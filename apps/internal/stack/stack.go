// Package stack runs the whole app tier on one machine: a real PostgreSQL
// with one role and database per service, a real TLS-only Redis with the
// services' ACL users, one certificate authority, and the four services as
// real processes, configured with the environment the operator gives their
// pods (internal/builder/services.go) except that every listener is on a
// free loopback port and Redis is one server instead of Sentinels.
//
//	st, err := stack.Start(ctx, stack.Options{Dir: dir})
//	if err != nil { ... }
//	defer st.Close()
//	res, err := st.HTTPClient().Get(st.Service(stack.Inventory).PublicURL() + "/v1/products")
//
// Everything the stack writes lives under Options.Dir: the binaries (bin/),
// one directory per service with its TLS, key and password files, and the
// logs of every process (logs/).
package stack

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// The four services, in the order they start: order calls inventory and
// payment, so they come first.
const (
	User      = "user"
	Inventory = "inventory"
	Payment   = "payment"
	Order     = "order"
)

// Services lists the services in start order.
var Services = []string{User, Inventory, Payment, Order}

// The Shop the stack pretends to be: its name and namespace shape the SPIFFE
// IDs, the token issuer and audience exactly as the operator derives them.
const (
	ShopName    = "acme"
	Namespace   = "shop"
	TrustDomain = "cluster.local"
)

// callers is the internal part of the call graph (internal/callgraph in the
// operator): who may call each service's internal listener.
var callers = map[string][]string{
	Inventory: {Order},
	Payment:   {Order},
}

// Options tune a stack. Only Dir is required.
type Options struct {
	// Dir holds everything the stack writes; it must exist.
	Dir string
	// ModuleDir is the apps module's root; empty finds it from this
	// package's source location.
	ModuleDir string
	// RateLimitRPS and RateLimitBurst are the per-client limits; zero means
	// the operator's defaults (50 and 100). Every local client shares one
	// address, so load tests raise them.
	RateLimitRPS, RateLimitBurst int
	// Env adds or overrides variables per service, e.g. a short breaker
	// cooldown for a test.
	Env map[string]map[string]string
	// ReadyTimeout bounds the wait for each service's /readyz; zero means
	// 60 seconds.
	ReadyTimeout time.Duration
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Stack is a running app tier. Close stops it.
type Stack struct {
	Dir string
	// CA signed every certificate: Postgres's, Redis's and the services'.
	CA *testenv.CA
	// CAFile is the CA certificate on disk (for curl --cacert).
	CAFile   string
	Postgres *testenv.Postgres
	Redis    *testenv.Redis
	// Issuer and Audience are the iss and aud of the Shop's tokens.
	Issuer, Audience string
	// AdminUsername and AdminPassword are the first admin's credentials.
	AdminUsername, AdminPassword string
	// Keys are the token signing files: the user service's signing key and
	// kid, and the JWKS every service verifies with.
	Keys *SigningKeys

	opts     Options
	services map[string]*Service
	dbPass   map[string]string
	closed   sync.Once
}

// Start brings the whole tier up and waits until every service is ready.
// On error, whatever was started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Dir == "" {
		return nil, errors.New("stack: Options.Dir is required")
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	if opts.RateLimitRPS == 0 {
		opts.RateLimitRPS = 50
	}
	if opts.RateLimitBurst == 0 {
		opts.RateLimitBurst = 100
	}
	if opts.ModuleDir == "" {
		if opts.ModuleDir, err = moduleDir(); err != nil {
			return nil, err
		}
	}
	st := &Stack{
		Dir:      opts.Dir,
		Issuer:   "https://" + ShopName + "-user." + Namespace + ".svc",
		Audience: "shopstack:" + Namespace + "/" + ShopName,
		opts:     opts,
		services: map[string]*Service{},
		dbPass:   map[string]string{},
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	for _, d := range []string{st.binDir(), st.logDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}

	// Building takes the longest the first time; it runs while the data
	// tier starts.
	built := make(chan error, 1)
	go func() { built <- st.build(ctx) }()

	if st.CA, err = testenv.NewCAOrError(); err != nil {
		return nil, err
	}
	st.CAFile = filepath.Join(st.Dir, "ca.crt")
	if err := os.WriteFile(st.CAFile, st.CA.PEM(), 0o644); err != nil {
		return nil, err
	}
	st.logf("starting postgres")
	if st.Postgres, err = testenv.NewPostgres(testenv.PostgresOptions{CA: st.CA}); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	for _, svc := range Services {
		st.dbPass[svc] = rand.Text()
		if err := st.Postgres.CreateRoleAndDB(svc, st.dbPass[svc]); err != nil {
			return nil, err
		}
	}
	st.logf("starting redis")
	redisDir := filepath.Join(st.Dir, "redis")
	if err := os.MkdirAll(redisDir, 0o700); err != nil {
		return nil, err
	}
	if st.Redis, err = testenv.NewRedis(redisDir, testenv.RedisOptions{CA: st.CA}); err != nil {
		return nil, fmt.Errorf("starting redis: %w", err)
	}
	if err := st.writeSecrets(); err != nil {
		return nil, err
	}
	for _, svc := range Services {
		s, err := st.newService(svc)
		if err != nil {
			return nil, err
		}
		st.services[svc] = s
	}

	select {
	case err = <-built:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	for _, svc := range Services {
		st.logf("starting %s", svc)
		if err := st.services[svc].Start(ctx); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Service returns one of the four services by name; it panics on any other.
func (st *Stack) Service(name string) *Service {
	s, ok := st.services[name]
	if !ok {
		panic("stack: no service " + strconv.Quote(name))
	}
	return s
}

// DatabaseDSN is a TLS connection string for a service's own role and
// database, as the service itself connects.
func (st *Stack) DatabaseDSN(svc string) string {
	return st.Postgres.DSN(svc, st.dbPass[svc], svc)
}

// HTTPClient is a client for the public ports: it trusts the stack's CA and
// presents no certificate.
func (st *Stack) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: st.TLSConfig(), MaxIdleConnsPerHost: 64},
	}
}

// TLSConfig trusts the stack's CA.
func (st *Stack) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: st.CA.Pool(), MinVersion: tls.VersionTLS12}
}

// Close stops the services (SIGTERM, then SIGKILL after a grace period),
// then Redis and Postgres. It keeps the logs and is safe to call twice.
func (st *Stack) Close() {
	st.closed.Do(func() {
		var wg sync.WaitGroup
		for _, s := range st.services {
			wg.Go(s.Stop)
		}
		wg.Wait()
		if st.Redis != nil {
			st.Redis.Stop()
		}
		if st.Postgres != nil {
			// The server's files go with it; its log is worth keeping.
			copyFile(filepath.Join(st.Postgres.Dir, "postgres.log"), filepath.Join(st.logDir(), "postgres.log"))
			st.Postgres.Stop()
		}
	})
}

// LogTails returns the last lines of every service's log, for a failing
// test to show.
func (st *Stack) LogTails(lines int) string {
	var out string
	for _, svc := range Services {
		if s, ok := st.services[svc]; ok {
			out += fmt.Sprintf("--- %s (%s)\n%s\n", svc, s.LogPath, s.LogTail(lines))
		}
	}
	return out
}

func (st *Stack) binDir() string { return filepath.Join(st.Dir, "bin") }
func (st *Stack) logDir() string { return filepath.Join(st.Dir, "logs") }

func (st *Stack) logf(format string, args ...any) {
	if st.opts.Logf != nil {
		st.opts.Logf(format, args...)
	}
}

// build compiles the four services into bin/ with one go build.
func (st *Stack) build(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", st.binDir() + string(filepath.Separator)}
	for _, svc := range Services {
		args = append(args, "./"+svc+"/cmd/"+svc)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = st.opts.ModuleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the services: %w\n%s", err, out)
	}
	return nil
}

// moduleDir is the apps module's root, two levels above this file.
func moduleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("stack: cannot locate the apps module; set Options.ModuleDir")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("stack: no apps module at %s; set Options.ModuleDir: %w", dir, err)
	}
	return dir, nil
}

// SPIFFEID is a service's identity, as the operator derives it.
func SPIFFEID(svc string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s-%s", TrustDomain, Namespace, ShopName, svc)
}

// AllowedCallers is SHOPSTACK_ALLOWED_CALLERS for a service.
func AllowedCallers(svc string) []string {
	var ids []string
	for _, from := range callers[svc] {
		ids = append(ids, SPIFFEID(from))
	}
	slices.Sort(ids)
	return ids
}

func copyFile(from, to string) {
	in, err := os.Open(from)
	if err != nil {
		return
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return
	}
	defer out.Close()
	_, _ = io.Copy(out, in)
}

func mergeEnv(dst map[string]string, srcs ...map[string]string) {
	for _, src := range srcs {
		maps.Copy(dst, src)
	}
}
