package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/auth/authtest"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

const (
	testIssuer   = "https://shop.example.com"
	testAudience = "shopstack:shop/acme"
	adminPass    = "admin-password-from-the-secret"
	grace        = 5 * time.Second
)

// buildBinary compiles this command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "user")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serviceEnv is what the operator would set on the user Deployment, pointed
// at the test's Postgres, files and loopback ports.
func serviceEnv(t *testing.T, pg *testenv.Postgres, publicPort, opsPort int) (map[string]string, *authtest.Issuer) {
	t.Helper()
	if err := pg.CreateRoleAndDB("user", "user-db-password"); err != nil {
		t.Fatal(err)
	}
	vars := pg.ServiceEnv(t, "user", "user-db-password")
	// One CA signs Postgres's certificate and the service's own, as the
	// Shop's issuer does.
	serviceCert := pg.CA.Issue(t, testenv.CertSpec{
		CommonName: "acme-user", Hosts: []string{"127.0.0.1", "localhost"},
		URIs: []string{"spiffe://cluster.local/ns/shop/sa/acme-user"},
	})
	issuer := authtest.NewIssuer(t, testIssuer, testAudience)
	adminDir := t.TempDir()
	for name, v := range map[string]string{"username": "admin", "password": adminPass + "\n"} {
		if err := os.WriteFile(filepath.Join(adminDir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{
		"SHOPSTACK_SERVICE":              "user",
		"SHOPSTACK_SHOP":                 "acme",
		"SHOPSTACK_MESH":                 "none",
		"SHOPSTACK_PUBLIC_ADDR":          "127.0.0.1:" + strconv.Itoa(publicPort),
		"SHOPSTACK_INTERNAL_ADDR":        "127.0.0.1:0",
		"SHOPSTACK_OPS_ADDR":             "127.0.0.1:" + strconv.Itoa(opsPort),
		"SHOPSTACK_TLS_DIR":              pg.CA.TLSDir(t, serviceCert),
		"SHOPSTACK_JWKS_FILE":            issuer.JWKSFile,
		"SHOPSTACK_JWT_ISSUER":           testIssuer,
		"SHOPSTACK_JWT_AUDIENCE":         testAudience,
		"SHOPSTACK_JWT_SIGNING_KEY_FILE": issuer.KeyFile,
		"SHOPSTACK_JWT_KEY_ID_FILE":      issuer.KeyIDFile,
		"SHOPSTACK_ADMIN_DIR":            adminDir,
		"SHOPSTACK_SHUTDOWN_GRACE":       grace.String(),
		"SHOPSTACK_DRAIN_DELAY":          "500ms",
		"SHOPSTACK_HASH_MEMORY_BUDGET":   "64MiB",
	} {
		vars[k] = v
	}
	return vars, issuer
}

func envList(vars map[string]string) []string {
	out := []string{"PATH=/usr/bin:/bin"}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// process is the service running as a real process.
type process struct {
	cmd    *exec.Cmd
	output *testenv.SyncBuffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, bin string, vars map[string]string) *process {
	t.Helper()
	p := &process{output: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = envList(vars)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("service output:\n%s", p.output.String())
		}
	})
	return p
}

func (p *process) wait(timeout time.Duration) (exited bool) {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func httpsClient(pg *testenv.Postgres) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pg.CA.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		}},
	}
}

func call(t *testing.T, c *http.Client, method, url, contentType, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// waitStatus polls url until it answers want, for at most timeout.
func waitStatus(c *http.Client, url string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for i := 0; i < 600 && time.Now().Before(deadline); i++ {
		res, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == want {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %d within %s (last: %s)", url, want, timeout, last)
}

func TestBinaryServesOverTLSAndShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts PostgreSQL; skipped under -short")
	}
	bin := buildBinary(t)
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{})
	publicPort, opsPort := testenv.FreePort(t), testenv.FreePort(t)
	vars, issuer := serviceEnv(t, pg, publicPort, opsPort)
	svc := start(t, bin, vars)

	ops := &http.Client{Timeout: 3 * time.Second}
	opsURL := fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	if err := waitStatus(ops, opsURL+"/readyz", http.StatusOK, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	c := httpsClient(pg)
	public := fmt.Sprintf("https://127.0.0.1:%d", publicPort)
	status, _, body := call(t, c, "POST", public+"/v1/users", "application/json",
		`{"email":"ann@example.com","password":"correct horse battery"}`)
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	var user struct{ ID string }
	_ = json.Unmarshal(body, &user)

	form := url.Values{"grant_type": {"password"}, "username": {"ann@example.com"}, "password": {"correct horse battery"}}
	status, _, body = call(t, c, "POST", public+"/v1/auth/token", "application/x-www-form-urlencoded", form.Encode())
	if status != http.StatusOK {
		t.Fatalf("token: %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &tok)
	claims, err := issuer.Verifier(t).Verify(tok.AccessToken)
	if err != nil || claims.Subject != user.ID {
		t.Fatalf("token for %q: %+v, %v", user.ID, claims, err)
	}
	status, _, body = call(t, c, "GET", public+"/v1/users/me", "", "", "Authorization", "Bearer "+tok.AccessToken)
	if status != http.StatusOK || !strings.Contains(string(body), user.ID) {
		t.Fatalf("me: %d %s", status, body)
	}

	// The first admin came from the admin directory.
	form = url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {adminPass}}
	if status, _, body = call(t, c, "POST", public+"/v1/auth/token", "application/x-www-form-urlencoded", form.Encode()); status != http.StatusOK {
		t.Fatalf("admin token: %d %s", status, body)
	}

	// Plain HTTP on the public port is refused.
	if res, err := ops.Get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/jwks.json", publicPort)); err == nil {
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Fatalf("plain HTTP on the public port answered %s", res.Status)
		}
	}

	_, _, metrics := call(t, ops, "GET", opsURL+"/metrics", "", "")
	for _, want := range []string{"users_registered_total 1", `logins_total{result="success"} 2`, "password_hash_concurrency_limit 3"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// SIGTERM: not ready at once, then a clean exit within the grace period.
	started := time.Now()
	if err := svc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitStatus(ops, opsURL+"/readyz", http.StatusServiceUnavailable, 2*time.Second); err != nil {
		t.Errorf("while draining: %v", err)
	}
	if !svc.wait(grace + 2*time.Second) {
		t.Fatalf("still running %s after SIGTERM", time.Since(started))
	}
	if svc.err != nil {
		t.Fatalf("exit after SIGTERM: %v", svc.err)
	}
	if took := time.Since(started); took > grace {
		t.Fatalf("shutdown took %s, longer than the grace period %s", took, grace)
	}
}

func TestBinaryReportsEveryConfigurationProblem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SHOPSTACK_HASH_MEMORY_BUDGET=1MiB"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"SHOPSTACK_SERVICE: required", "SHOPSTACK_JWT_ISSUER: required", "SHOPSTACK_JWT_SIGNING_KEY_FILE",
		"SHOPSTACK_ADMIN_DIR", "SHOPSTACK_HASH_MEMORY_BUDGET: must hold at least one password hash",
		"SHOPSTACK_POSTGRES_HOST: required",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := filepath.Join(dir, "admin")
	if err := os.Mkdir(admin, 0o700); err != nil {
		t.Fatal(err)
	}
	write("admin/username", "admin\n")
	write("admin/password", "s3cret-admin-password\n")
	write("ca.crt", "")
	vars := map[string]string{
		"SHOPSTACK_SERVICE": "user", "SHOPSTACK_MESH": "none", "SHOPSTACK_TLS_DIR": dir,
		"SHOPSTACK_JWKS_FILE": write("jwks.json", "{}"), "SHOPSTACK_JWT_ISSUER": testIssuer, "SHOPSTACK_JWT_AUDIENCE": testAudience,
		"SHOPSTACK_JWT_SIGNING_KEY_FILE": write("signing.key", "k"), "SHOPSTACK_JWT_KEY_ID_FILE": write("kid", "kid-1"),
		"SHOPSTACK_ADMIN_DIR": admin, "SHOPSTACK_POSTGRES_HOST": "db", "SHOPSTACK_POSTGRES_DATABASE": "user",
		"SHOPSTACK_POSTGRES_USER": "user", "SHOPSTACK_POSTGRES_PASSWORD_FILE": write("pgpass", "pw"),
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := loadConfig(config.Map(vars))
		if err != nil {
			t.Fatal(err)
		}
		if c.AdminUsername != "admin" || c.AdminPassword != "s3cret-admin-password" || c.HashBudget != 128<<20 ||
			c.MaxFailures != 5 || c.LockoutWindow != 15*time.Minute || c.Postgres.Host != "db" || c.KeyIDFile == "" {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("problems are named", func(t *testing.T) {
		bad := map[string]string{}
		for k, v := range vars {
			bad[k] = v
		}
		bad["SHOPSTACK_LOGIN_MAX_FAILURES"] = "0"
		bad["SHOPSTACK_LOGIN_LOCKOUT_WINDOW"] = "soon"
		bad["SHOPSTACK_ADMIN_DIR"] = dir // no username or password files
		_, err := loadConfig(config.Map(bad))
		for _, want := range []string{"SHOPSTACK_LOGIN_MAX_FAILURES: must be at least 1", "SHOPSTACK_LOGIN_LOCKOUT_WINDOW: must be a non-negative duration", "SHOPSTACK_ADMIN_DIR: open"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
		}
	})
}
