package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/ordertest"
	"github.com/shopstack/shopstack/apps/order/internal/outbox"
	"github.com/shopstack/shopstack/apps/pkg/auth/authtest"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// TestBinary builds the order service and runs it as the operator would:
// mesh none, every variable the Deployment sets, real PostgreSQL and Redis,
// inventory and payment behind mTLS. It must become ready, take an order,
// publish its event, and exit 0 on SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped under -short")
	}
	bin := filepath.Join(t.TempDir(), "order")
	buildCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(buildCtx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// One CA signs everything, as the Shop's issuer does.
	ca := testenv.NewCA(t)
	ident := ordertest.FromTestenv(ca)
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{CA: ca})
	if err := pg.CreateRoleAndDB("order", "order-secret"); err != nil {
		t.Fatal(err)
	}
	rds := testenv.StartRedis(t, testenv.RedisOptions{CA: ca, Services: []string{"order"}})
	inv := ordertest.StartInventory(t, ident, map[string]ordertest.Product{"BOOK-1": {PriceCents: 1250, Currency: "EUR", OnHand: 5}})
	pay := ordertest.StartPayment(t, ident)
	issuer := authtest.NewIssuer(t, "https://shop.example.com", "shopstack:shop/acme")

	publicAddr, opsAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"SHOPSTACK_SERVICE":         "order",
		"SHOPSTACK_SHOP":            "acme",
		"SHOPSTACK_MESH":            "none",
		"SHOPSTACK_PUBLIC_ADDR":     publicAddr,
		"SHOPSTACK_INTERNAL_ADDR":   freeAddr(t),
		"SHOPSTACK_OPS_ADDR":        opsAddr,
		"SHOPSTACK_TLS_DIR":         ident(t, ordertest.OrderID, "localhost", "127.0.0.1"),
		"SHOPSTACK_JWKS_FILE":       issuer.JWKSFile,
		"SHOPSTACK_JWT_ISSUER":      issuer.Issuer,
		"SHOPSTACK_JWT_AUDIENCE":    issuer.Audience,
		"SHOPSTACK_INVENTORY_URL":   strings.Replace(inv.URL, "127.0.0.1", "localhost", 1),
		"SHOPSTACK_PAYMENT_URL":     strings.Replace(pay.URL, "127.0.0.1", "localhost", 1),
		"SHOPSTACK_DRAIN_DELAY":     "100ms",
		"SHOPSTACK_SHUTDOWN_GRACE":  "5s",
		"SHOPSTACK_OUTBOX_INTERVAL": "100ms",
	}
	for k, v := range pg.ServiceEnv(t, "order", "order-secret") {
		env[k] = v
	}
	for k, v := range rds.ServiceEnv(t, "order") {
		env[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("order logs:\n%s", logs.String())
		}
	})

	waitReady(t, "http://"+opsAddr+"/readyz", exited)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12},
	}}
	body := fmt.Sprintf(`{"items":[{"sku":"BOOK-1","quantity":2}],"card":{"number":%q,"exp_month":12,"exp_year":%d,"cvc":"123"}}`,
		ordertest.CardApproved, time.Now().Year()+1)
	req, _ := http.NewRequest("POST", "https://"+publicAddr+"/v1/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+issuer.Token(t, "alice", "customer"))
	req.Header.Set("Idempotency-Key", "first")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var order struct{ ID, Status string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(answer, &order) != nil || order.Status != "confirmed" {
		t.Fatalf("order: %d %s", resp.StatusCode, answer)
	}
	if inv.OnHand("BOOK-1") != 3 || len(pay.Charges()) != 1 {
		t.Fatalf("on hand %d, charges %d", inv.OnHand("BOOK-1"), len(pay.Charges()))
	}

	rdb := ordertest.RedisClient(t, rds, rds.Addr())
	deadline := time.Now().Add(10 * time.Second)
	for found := false; !found; {
		msgs, _ := rdb.XRange(context.Background(), outbox.Stream, "-", "+").Result()
		for _, m := range msgs {
			found = found || (m.Values["order_id"] == order.ID && m.Values["type"] == "order.confirmed")
		}
		if !found && time.Now().After(deadline) {
			t.Fatalf("no event in %s: %v", outbox.Stream, msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
}

func waitReady(t *testing.T, url string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the service exited while starting: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
