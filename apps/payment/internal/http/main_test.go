package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/payment/internal/crypto"
	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	paymenthttp "github.com/shopstack/shopstack/apps/payment/internal/http"
	"github.com/shopstack/shopstack/apps/payment/internal/processor"
	paymentstore "github.com/shopstack/shopstack/apps/payment/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// One PostgreSQL server for the package; each test gets a database of its own.
var pgShared testenv.SharedPostgres

func TestMain(m *testing.M) {
	code := m.Run()
	pgShared.Stop()
	os.Exit(code)
}

// testProcessorTimeout keeps the timeout card's tests short.
const testProcessorTimeout = 300 * time.Millisecond

// newDB creates a role and database for the test, migrated, and returns
// its configuration as a replica would have it (TLS, SCRAM, password file).
func newDB(t *testing.T) store.Config {
	t.Helper()
	pg := pgShared.Get(t)
	name, password := pgShared.NewDatabase(t, "payment")
	env := pg.ServiceEnv(t, name, password)
	env["SHOPSTACK_TLS_DIR"] = pg.CA.TLSDir(t, nil)
	env["SHOPSTACK_POSTGRES_STARTUP_TIMEOUT"] = "10s"
	cfg, err := store.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	pool := openPool(t, cfg)
	if err := paymentstore.Migrate(testContext(t), pool); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openPool(t *testing.T, cfg store.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := store.Open(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testKey is the encryption key of every test replica.
var testKey = bytes.Repeat([]byte{0x5a}, crypto.KeySize)

func testKeyring(t *testing.T) *crypto.Keyring {
	t.Helper()
	k, err := crypto.NewKeyring(crypto.DefaultKeyID, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// countingProcessor counts the charges that reach the processor.
type countingProcessor struct {
	processor.Simulator
	calls atomic.Int32
}

func (p *countingProcessor) Charge(ctx context.Context, card domain.Card, amount int64, currency string) error {
	p.calls.Add(1)
	return p.Simulator.Charge(ctx, card, amount, currency)
}

// replica is one payment service instance: its own pool, service and HTTP
// server, sharing the test's database with the other replicas.
type replica struct {
	URL       string
	Pool      *pgxpool.Pool
	Processor *countingProcessor
	Handler   http.Handler // the internal routes with the standard middleware
}

// newReplica starts a replica over plain HTTP on loopback; callers'
// identities are tested separately, over real mTLS.
func newReplica(t *testing.T, cfg store.Config, logOut io.Writer) *replica {
	t.Helper()
	pool := openPool(t, cfg)
	proc := &countingProcessor{}
	svc := &domain.Service{
		Repo: paymentstore.New(pool), Processor: proc, Sealer: testKeyring(t), ProcessorTimeout: testProcessorTimeout,
	}
	if logOut == nil {
		logOut = io.Discard
	}
	logger := telemetry.NewLogger(logOut, slog.LevelDebug, "payment")
	h := httpx.Instrument(paymenthttp.Internal(svc), logger, nil, 64<<10)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &replica{URL: srv.URL, Pool: pool, Processor: proc, Handler: h}
}

// answer is an HTTP response with its body read.
type answer struct {
	Status int
	Body   []byte
}

func (a answer) payment(t *testing.T) paymenthttp.PaymentJSON {
	t.Helper()
	var p paymenthttp.PaymentJSON
	if err := json.Unmarshal(a.Body, &p); err != nil {
		t.Fatalf("%s: %v", a.Body, err)
	}
	return p
}

func (a answer) errorBody(t *testing.T) httpx.ErrorDetail {
	t.Helper()
	var e httpx.ErrorBody
	if err := json.Unmarshal(a.Body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a JSON error: %s (%v)", a.Body, err)
	}
	return e.Error
}

var client = &http.Client{Timeout: 10 * time.Second}

func post(t *testing.T, url, key string, body string) answer {
	t.Helper()
	a, err := send(client, http.MethodPost, url, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func send(c *http.Client, method, url, key, body string) (answer, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{Status: resp.StatusCode, Body: b}, err
}

func get(t *testing.T, url string) answer {
	t.Helper()
	a, err := send(client, http.MethodGet, url, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// chargeBody is a charge request for card.
func chargeBody(orderID string, amount int64, card string) string {
	return fmt.Sprintf(`{"order_id":%q,"amount_cents":%d,"currency":"EUR","card":{"number":%q,"exp_month":12,"exp_year":%d,"cvc":"123"}}`,
		orderID, amount, card, time.Now().Year()+3)
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(testContext(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
