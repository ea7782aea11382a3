package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/order/internal/clients"
	orderhttp "github.com/shopstack/shopstack/apps/order/internal/http"
	"github.com/shopstack/shopstack/apps/order/internal/ordertest"
	"github.com/shopstack/shopstack/apps/order/internal/outbox"
	"github.com/shopstack/shopstack/apps/order/internal/saga"
	"github.com/shopstack/shopstack/apps/order/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/auth/authtest"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ordertest.StopPostgres()
	os.Exit(code)
}

var discard = slog.New(slog.DiscardHandler)

// The catalogue every stack starts with.
const (
	book  = "BOOK-1"
	lamp  = "LAMP_2"
	stock = 10
)

// bodyLimit is small in tests so an oversized body is cheap to send.
const bodyLimit = 16 << 10

// stack is the order service wired as in main, in process: its public API
// over HTTP, with the fakes of inventory and payment behind real mTLS,
// PostgreSQL, and (when asked for) Redis with the outbox relay running.
type stack struct {
	url    string
	inv    *ordertest.Inventory
	pay    *ordertest.Payment
	pool   *pgxpool.Pool
	store  *store.Store
	saga   *saga.Saga
	issuer *authtest.Issuer
	rdb    *redis.Client
	relay  *outbox.Relay
	// The order service's own clients for the fakes.
	invClient *clients.Inventory
	payClient *clients.Payment
}

type stackOptions struct {
	clients ordertest.ClientOptions
	redis   bool
	// redisAddr replaces the server's address, e.g. with a proxy; it gets
	// the Redis server to connect to.
	redisAddr func(t *testing.T, server string) string
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	ca := ordertest.FromMTLSTest(mtlstest.NewCA(t, "shop CA"))
	s := &stack{
		inv: ordertest.StartInventory(t, ca, map[string]ordertest.Product{
			book: {PriceCents: 1250, Currency: "EUR", OnHand: stock},
			lamp: {PriceCents: 4999, Currency: "EUR", OnHand: stock},
		}),
		pay:    ordertest.StartPayment(t, ca),
		pool:   ordertest.NewDB(t),
		issuer: authtest.NewIssuer(t, "https://shop.example.com", "shopstack:shop/acme"),
	}
	s.store = store.New(s.pool)
	inv, pay := ordertest.Clients(t, ca, s.inv, s.pay, opts.clients)
	s.invClient, s.payClient = inv, pay
	notify := func() {}
	if opts.redis {
		r, rdb := ordertest.Redis(t)
		if opts.redisAddr != nil {
			rdb = ordertest.RedisClient(t, r, opts.redisAddr(t, r.Addr()))
		}
		s.rdb = rdb
		s.relay = outbox.New(outbox.Config{Pool: s.pool, Redis: rdb, Interval: 100 * time.Millisecond, Logger: discard})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.relay.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		notify = s.relay.Notify
	}
	s.saga = saga.New(saga.Config{Store: s.store, Inventory: inv, Payment: pay, Notify: notify, Logger: discard})
	h := &orderhttp.Handlers{Store: s.store, Saga: s.saga, ReplayWait: 10 * time.Second}
	srv := httptest.NewServer(httpx.Instrument(h.Routes(s.issuer.Verifier(t)), discard, nil, bodyLimit))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// response is an API answer.
type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) order(t *testing.T) orderBody {
	t.Helper()
	var o orderBody
	if err := json.Unmarshal(r.body, &o); err != nil {
		t.Fatalf("not an order (%d): %s", r.status, r.body)
	}
	return o
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e httpx.ErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body (%d): %s", r.status, r.body)
	}
	return e.Error.Code
}

type orderBody struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	Items  []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Currency   string    `json:"currency"`
	PaymentID  string    `json:"payment_id"`
	CustomerID string    `json:"customer_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// call makes a request; header values are name, value pairs.
func (s *stack) call(t *testing.T, method, path, token, body string, header ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header}
}

// placeOrder posts an order for sku and quantity paid with card.
func (s *stack) placeOrder(t *testing.T, token, key, sku string, quantity int, card string) response {
	t.Helper()
	return s.call(t, "POST", "/v1/orders", token, orderJSON(sku, quantity, card), "Idempotency-Key", key)
}

func orderJSON(sku string, quantity int, card string) string {
	b, _ := json.Marshal(map[string]any{
		"items": []map[string]any{{"sku": sku, "quantity": quantity}},
		"card":  map[string]any{"number": card, "exp_month": 12, "exp_year": time.Now().Year() + 2, "cvc": "123"},
	})
	return string(b)
}

func (s *stack) customer(t *testing.T, id string) string { return s.issuer.Token(t, id, "customer") }
func (s *stack) admin(t *testing.T) string               { return s.issuer.Token(t, "admin-1", "admin") }

func (s *stack) countOrders(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// events reads the order:events stream.
func (s *stack) events(t *testing.T) []redis.XMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msgs, err := s.rdb.XRange(ctx, outbox.Stream, "-", "+").Result()
	if err != nil {
		return nil
	}
	return msgs
}

// waitForEvent waits (at most timeout) for an event of type about order id.
func (s *stack) waitForEvent(t *testing.T, typ, id string, timeout time.Duration) redis.XMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, m := range s.events(t) {
			if m.Values["type"] == typ && m.Values["order_id"] == id {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s in %s; stream: %v", typ, id, timeout, s.events(t))
	return redis.XMessage{}
}

func jsonBody(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
