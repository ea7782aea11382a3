package stack

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// stopGrace is how long a service may take to drain after SIGTERM before it
// is killed. The services are started with a short drain delay and
// shutdown grace, so this is generous.
const stopGrace = 10 * time.Second

// Service is one service process. Its ports stay the same across Stop and
// Start, so a test can take a service down and bring it back.
type Service struct {
	Name string
	// SPIFFEID is the identity in the service's certificate.
	SPIFFEID string
	// PublicAddr, InternalAddr and OpsAddr are 127.0.0.1:port.
	PublicAddr, InternalAddr, OpsAddr string
	// TLSDir holds tls.crt, tls.key and ca.crt (SHOPSTACK_TLS_DIR).
	TLSDir string
	// LogPath receives the process's output, appended across restarts.
	LogPath string
	// Env is the process's whole environment.
	Env map[string]string

	bin          string
	readyTimeout time.Duration
	mu           sync.Mutex
	cert         *testenv.KeyPair
	cmd          *exec.Cmd
	done         chan struct{}
}

func (st *Stack) newService(svc string) (*Service, error) {
	s := &Service{
		Name:         svc,
		SPIFFEID:     SPIFFEID(svc),
		TLSDir:       filepath.Join(st.Dir, svc, "tls"),
		LogPath:      filepath.Join(st.logDir(), svc+".log"),
		bin:          filepath.Join(st.binDir(), svc),
		readyTimeout: st.opts.ReadyTimeout,
	}
	for _, addr := range []*string{&s.PublicAddr, &s.InternalAddr, &s.OpsAddr} {
		port, err := testenv.FreePortOrError()
		if err != nil {
			return nil, err
		}
		*addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	if err := os.MkdirAll(s.TLSDir, 0o700); err != nil {
		return nil, err
	}
	kp, err := st.issueServiceCert(svc)
	if err != nil {
		return nil, err
	}
	if err := st.CA.WriteTLSDir(s.TLSDir, kp); err != nil {
		return nil, err
	}
	s.cert = kp
	dir := filepath.Join(st.Dir, svc)
	pgPassword := filepath.Join(dir, "postgres-password")
	if err := os.WriteFile(pgPassword, []byte(st.dbPass[svc]), 0o600); err != nil {
		return nil, err
	}

	// The operator's environment (internal/builder/services.go), with
	// loopback addresses for the cluster's names.
	env := map[string]string{
		"SHOPSTACK_SERVICE":                svc,
		"SHOPSTACK_SHOP":                   ShopName,
		"SHOPSTACK_MESH":                   "none",
		"SHOPSTACK_PUBLIC_ADDR":            s.PublicAddr,
		"SHOPSTACK_INTERNAL_ADDR":          s.InternalAddr,
		"SHOPSTACK_OPS_ADDR":               s.OpsAddr,
		"SHOPSTACK_TLS_DIR":                s.TLSDir,
		"SHOPSTACK_JWKS_FILE":              st.Keys.JWKSFile,
		"SHOPSTACK_JWT_ISSUER":             st.Issuer,
		"SHOPSTACK_JWT_AUDIENCE":           st.Audience,
		"SHOPSTACK_ALLOWED_CALLERS":        strings.Join(AllowedCallers(svc), ","),
		"SHOPSTACK_POSTGRES_HOST":          st.Postgres.Host,
		"SHOPSTACK_POSTGRES_PORT":          strconv.Itoa(st.Postgres.Port),
		"SHOPSTACK_POSTGRES_DATABASE":      svc,
		"SHOPSTACK_POSTGRES_USER":          svc,
		"SHOPSTACK_POSTGRES_PASSWORD_FILE": pgPassword,
		"SHOPSTACK_RATE_LIMIT_RPS":         strconv.Itoa(st.opts.RateLimitRPS),
		"SHOPSTACK_RATE_LIMIT_BURST":       strconv.Itoa(st.opts.RateLimitBurst),
		// A local process has no endpoints to drain from.
		"SHOPSTACK_DRAIN_DELAY":    "100ms",
		"SHOPSTACK_SHUTDOWN_GRACE": "5s",
	}
	if slices.Contains(testenv.DefaultRedisServices, svc) {
		redisPassword := filepath.Join(dir, "redis-password")
		if err := os.WriteFile(redisPassword, []byte(st.Redis.Password(svc)), 0o600); err != nil {
			return nil, err
		}
		env["SHOPSTACK_REDIS_ADDR"] = st.Redis.Addr()
		env["SHOPSTACK_REDIS_USER"] = svc
		env["SHOPSTACK_REDIS_PASSWORD_FILE"] = redisPassword
	}
	switch svc {
	case User:
		env["SHOPSTACK_JWT_SIGNING_KEY_FILE"] = st.Keys.KeyFile
		env["SHOPSTACK_JWT_KEY_ID_FILE"] = st.Keys.KeyIDFile
		env["SHOPSTACK_ADMIN_DIR"] = filepath.Join(st.Dir, "admin")
	case Payment:
		env["SHOPSTACK_ENCRYPTION_KEY_FILE"] = filepath.Join(st.Dir, "payment", "encryption.key")
	case Order:
		env["SHOPSTACK_INVENTORY_URL"] = "https://" + st.services[Inventory].InternalAddr
		env["SHOPSTACK_PAYMENT_URL"] = "https://" + st.services[Payment].InternalAddr
	}
	mergeEnv(env, st.opts.Env[svc])
	s.Env = env
	return s, nil
}

// PublicURL is https://127.0.0.1:<public port>.
func (s *Service) PublicURL() string { return "https://" + s.PublicAddr }

// InternalURL is https://127.0.0.1:<internal port>.
func (s *Service) InternalURL() string { return "https://" + s.InternalAddr }

// OpsURL is http://127.0.0.1:<ops port>.
func (s *Service) OpsURL() string { return "http://" + s.OpsAddr }

// ClientTLS presents the service's current certificate and trusts the CA:
// what the service itself uses to call its callees.
func (s *Service) ClientTLS(ca *testenv.CA) *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{s.cert.TLS}, MinVersion: tls.VersionTLS12}
}

// Running reports whether the process is alive.
func (s *Service) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Pid is the process id, or 0 when it is not running.
func (s *Service) Pid() int {
	if !s.Running() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Start runs the service and waits until its /readyz answers 200 (bounded
// by Options.ReadyTimeout); a process that exits meanwhile is an error that
// quotes its log.
func (s *Service) Start(ctx context.Context) error {
	if s.Running() {
		return fmt.Errorf("%s is already running", s.Name)
	}
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC"}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and killed with us should we die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.WaitReady(ctx, s.readyTimeout); err != nil {
		s.Stop()
		return fmt.Errorf("%w\n%s log:\n%s", err, s.Name, s.LogTail(30))
	}
	return nil
}

// WaitReady polls /readyz until it answers 200, the process exits or
// timeout passes.
func (s *Service) WaitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if !s.Running() {
			return fmt.Errorf("%s exited while starting", s.Name)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.OpsURL()+"/readyz", nil)
		res, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %s", s.Name, timeout, last)
}

// Stop sends SIGTERM and waits for the service to drain and exit; after
// stopGrace it kills the process group. It is safe to call when stopped.
func (s *Service) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || !s.Running() {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

// LogTail returns the last lines of the service's log.
func (s *Service) LogTail(lines int) string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
