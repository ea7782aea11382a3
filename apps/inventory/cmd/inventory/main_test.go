package main_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/auth/authtest"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// TestBinary builds the real command and runs it as the operator would:
// environment variables, mounted files, TLS everywhere.
func TestBinary(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{})
	if err := pg.CreateRoleAndDB("inventory", "inventory-password"); err != nil {
		t.Fatal(err)
	}
	rd := testenv.StartRedis(t, testenv.RedisOptions{CA: pg.CA})

	bin := filepath.Join(t.TempDir(), "inventory")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// One CA for the Shop, as in a cluster: the service certificate is
	// its mTLS identity and its client certificate for Postgres and Redis.
	id := "spiffe://cluster.local/ns/shop/sa/acme-inventory"
	tlsDir := pg.CA.TLSDir(t, pg.CA.Issue(t, testenv.CertSpec{
		CommonName: "inventory", Hosts: []string{"localhost", "127.0.0.1"}, URIs: []string{id},
	}))
	issuer := authtest.NewIssuer(t, "https://acme.example/auth", "shopstack")
	publicPort, internalPort, opsPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	env := map[string]string{
		"SHOPSTACK_SERVICE":          "inventory",
		"SHOPSTACK_SHOP":             "acme",
		"SHOPSTACK_MESH":             "none",
		"SHOPSTACK_PUBLIC_ADDR":      fmt.Sprintf("127.0.0.1:%d", publicPort),
		"SHOPSTACK_INTERNAL_ADDR":    fmt.Sprintf("127.0.0.1:%d", internalPort),
		"SHOPSTACK_OPS_ADDR":         fmt.Sprintf("127.0.0.1:%d", opsPort),
		"SHOPSTACK_TLS_DIR":          tlsDir,
		"SHOPSTACK_JWKS_FILE":        issuer.JWKSFile,
		"SHOPSTACK_JWT_ISSUER":       issuer.Issuer,
		"SHOPSTACK_JWT_AUDIENCE":     issuer.Audience,
		"SHOPSTACK_ALLOWED_CALLERS":  "spiffe://cluster.local/ns/shop/sa/acme-order",
		"SHOPSTACK_DRAIN_DELAY":      "0s",
		"SHOPSTACK_SHUTDOWN_GRACE":   "5s",
		"SHOPSTACK_RATE_LIMIT_RPS":   "50",
		"SHOPSTACK_RATE_LIMIT_BURST": "100",
	}
	for k, v := range pg.ServiceEnv(t, "inventory", "inventory-password") {
		env[k] = v
	}
	for k, v := range rd.ServiceEnv(t, "inventory") {
		env[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logPath := filepath.Join(t.TempDir(), "inventory.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the process is gone; waitErr says how it ended.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("inventory log:\n%s", out)
		}
	})

	ops := fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	waitOK(t, http.DefaultClient, ops+"/readyz", 20*time.Second, exited)
	if status := get(t, http.DefaultClient, ops+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz: %d", status)
	}

	public := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pg.CA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12},
	}}
	if status := get(t, public, "https://127.0.0.1:"+strconv.Itoa(publicPort)+"/v1/products"); status != http.StatusOK {
		t.Fatalf("GET /v1/products over TLS: %d", status)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v, want status 0", waitErr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitOK polls url until it answers 200, the process exits, or timeout.
func waitOK(t *testing.T, c *http.Client, url string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		last = err
		select {
		case <-exited:
			t.Fatal("inventory exited before it was ready")
		case <-ctx.Done():
			t.Fatalf("%s not ready within %s: %v", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
