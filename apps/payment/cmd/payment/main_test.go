package main_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

const (
	paymentSPIFFE = "spiffe://cluster.local/ns/shop/sa/acme-payment"
	orderSPIFFE   = "spiffe://cluster.local/ns/shop/sa/acme-order"
	card          = "4242424242424242"
)

// buildBinary compiles the real command once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "payment")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serviceEnv is what the operator gives the pod, on loopback ports.
func serviceEnv(t *testing.T, pg *testenv.Postgres, ca *testenv.CA, key []byte) map[string]string {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "encryption.key")
	jwks := filepath.Join(dir, "jwks.json")
	for p, content := range map[string][]byte{keyFile: key, jwks: []byte(`{"keys":[]}`)} {
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"SHOPSTACK_SERVICE":                  "payment",
		"SHOPSTACK_SHOP":                     "acme",
		"SHOPSTACK_MESH":                     "none",
		"SHOPSTACK_PUBLIC_ADDR":              "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"SHOPSTACK_INTERNAL_ADDR":            "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"SHOPSTACK_OPS_ADDR":                 "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"SHOPSTACK_TLS_DIR":                  ca.TLSDir(t, ca.Issue(t, testenv.CertSpec{CommonName: "payment", Hosts: []string{"localhost", "127.0.0.1"}, URIs: []string{paymentSPIFFE}})),
		"SHOPSTACK_JWKS_FILE":                jwks,
		"SHOPSTACK_JWT_ISSUER":               "https://shop.example.com",
		"SHOPSTACK_JWT_AUDIENCE":             "shopstack:shop/acme",
		"SHOPSTACK_ALLOWED_CALLERS":          orderSPIFFE,
		"SHOPSTACK_ENCRYPTION_KEY_FILE":      keyFile,
		"SHOPSTACK_DRAIN_DELAY":              "100ms",
		"SHOPSTACK_SHUTDOWN_GRACE":           "5s",
		"SHOPSTACK_POSTGRES_STARTUP_TIMEOUT": "10s",
	}
	maps.Copy(env, pg.ServiceEnv(t, "payment", "payment-pw"))
	return env
}

func command(bin string, env map[string]string, stderr io.Writer) *exec.Cmd {
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts PostgreSQL; skipped under -short")
	}
	bin := buildBinary(t)
	ca := testenv.NewCA(t)
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{CA: ca})
	if err := pg.CreateRoleAndDB("payment", "payment-pw"); err != nil {
		t.Fatal(err)
	}

	t.Run("a key file of the wrong size stops the start with a clear error", func(t *testing.T) {
		var out bytes.Buffer
		cmd := command(bin, serviceEnv(t, pg, ca, bytes.Repeat([]byte{1}, 31)), &out)
		err := runWithin(cmd, 20*time.Second)
		if code := exitCode(err); code != 1 {
			t.Fatalf("exit %d (%v), want 1\n%s", code, err, out.String())
		}
		for _, want := range []string{"SHOPSTACK_ENCRYPTION_KEY_FILE", "holds 31 bytes, want exactly 32"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the error does not say %q:\n%s", want, out.String())
			}
		}
	})

	t.Run("serves, charges over mTLS, stops on SIGTERM", func(t *testing.T) {
		env := serviceEnv(t, pg, ca, bytes.Repeat([]byte{2}, 32))
		var out testenv.SyncBuffer
		cmd := command(bin, env, &out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				t.Logf("service output:\n%s", out.String())
			}
		}()

		ops := &http.Client{Timeout: 2 * time.Second}
		ready := false
		for deadline := time.Now().Add(20 * time.Second); !ready && time.Now().Before(deadline); {
			resp, err := ops.Get("http://" + env["SHOPSTACK_OPS_ADDR"] + "/readyz")
			if err == nil {
				ready = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			if !ready {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !ready {
			t.Fatal("/readyz did not answer 200 within 20s")
		}

		order := ca.Issue(t, testenv.CertSpec{CommonName: "order", URIs: []string{orderSPIFFE}})
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{order.TLS}, MinVersion: tls.VersionTLS13,
		}}}
		body := fmt.Sprintf(`{"order_id":"0b8e5c1a-7d4f-4e2a-9c3b-1f2e3d4c5b6a","amount_cents":2500,"currency":"EUR","card":{"number":%q,"exp_month":12,"exp_year":%d,"cvc":"123"}}`,
			card, time.Now().Year()+2)
		req, _ := http.NewRequest(http.MethodPost, "https://"+env["SHOPSTACK_INTERNAL_ADDR"]+"/v1/payments", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "binary-1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(answer), `"card_last4":"4242"`) {
			t.Fatalf("charge: %d %s", resp.StatusCode, answer)
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still running 10s after SIGTERM")
		}
		if strings.Contains(out.String(), card) {
			t.Error("the card number is in the service's logs")
		}
		if !strings.Contains(out.String(), `"msg":"request"`) {
			t.Error("no JSON access log line")
		}
	})
}

func runWithin(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %s", d)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
