package http_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	paymenthttp "github.com/shopstack/shopstack/apps/payment/internal/http"
	"github.com/shopstack/shopstack/apps/payment/internal/processor"
	paymentstore "github.com/shopstack/shopstack/apps/payment/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

const (
	paymentID   = "spiffe://cluster.local/ns/shop/sa/acme-payment"
	orderID     = "spiffe://cluster.local/ns/shop/sa/acme-order"
	inventoryID = "spiffe://cluster.local/ns/shop/sa/acme-inventory"
)

// TestInternalListenerMTLS serves the internal API the way main does
// (httpx.Server, mtls.Setup under mesh none) and calls it as order would.
func TestInternalListenerMTLS(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	sec, err := mtls.NewSetup(config.MeshNone, mtlstest.ServiceDir(t, ca, paymentID, "localhost").Dir)
	if err != nil {
		t.Fatal(err)
	}
	authorize, err := sec.Authorize([]string{orderID})
	if err != nil {
		t.Fatal(err)
	}
	pool := openPool(t, newDB(t))
	svc := &domain.Service{Repo: paymentstore.New(pool), Processor: processor.Simulator{}, Sealer: testKeyring(t), ProcessorTimeout: testProcessorTimeout}
	srv := &httpx.Server{
		PublicAddr: "127.0.0.1:0", InternalAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0",
		Public: paymenthttp.Public(), PublicTLS: sec.PublicTLS(),
		Internal: authorize(paymenthttp.Internal(svc)), InternalTLS: sec.InternalTLS(),
		ShutdownGrace: 2 * time.Second,
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the server did not stop")
		}
	})
	url := "https://" + srv.Addr(httpx.ListenerInternal) + "/v1/payments"

	// callerAs is an HTTP client holding id's certificate, checking that
	// the server is payment.
	callerAs := func(t *testing.T, id string) *http.Client {
		t.Helper()
		src, err := mtls.NewSource(mtlstest.ServiceDir(t, ca, id, "caller").Dir)
		if err != nil {
			t.Fatal(err)
		}
		conf, err := src.ClientTLS(mtls.Peer{SPIFFEID: paymentID})
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
	}
	body := chargeBody(domain.NewID(), 1500, processor.CardApprove)

	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13,
		}}}
		_, err := send(c, http.MethodPost, url, "m-0", body)
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("got %v, want a TLS failure", err)
		}
	})

	t.Run("a certificate from another CA fails the handshake", func(t *testing.T) {
		other := mtlstest.NewCA(t, "other CA")
		leaf := other.Issue(t, orderID, nil)
		cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		}}}
		if _, err := send(c, http.MethodPost, url, "m-1", body); err == nil {
			t.Fatal("a foreign certificate was accepted")
		}
	})

	t.Run("inventory is forbidden", func(t *testing.T) {
		a, err := send(callerAs(t, inventoryID), http.MethodPost, url, "m-2", body)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusForbidden || a.errorBody(t).Code != "forbidden" {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})

	t.Run("order charges", func(t *testing.T) {
		a, err := send(callerAs(t, orderID), http.MethodPost, url, "m-3", body)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusCreated || a.payment(t).Status != "captured" {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})

	if n := count(t, pool, `SELECT count(*) FROM payments`); n != 1 {
		t.Errorf("%d payments, want only order's", n)
	}

	t.Run("only order may look up an order's payments", func(t *testing.T) {
		var charged struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal([]byte(body), &charged); err != nil {
			t.Fatal(err)
		}
		lookupURL := url + "?order_id=" + charged.OrderID
		a, err := send(callerAs(t, inventoryID), http.MethodGet, lookupURL, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusForbidden || a.errorBody(t).Code != "forbidden" {
			t.Fatalf("inventory: %d %s", a.Status, a.Body)
		}
		a, err = send(callerAs(t, orderID), http.MethodGet, lookupURL, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusOK || !strings.Contains(string(a.Body), `"status":"captured"`) {
			t.Fatalf("order: %d %s", a.Status, a.Body)
		}
	})

	t.Run("the public listener serves only 404s", func(t *testing.T) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost",
		}}}
		a, err := send(c, http.MethodPost, "https://"+srv.Addr(httpx.ListenerPublic)+"/v1/payments", "m-4", body)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusNotFound {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})
}
