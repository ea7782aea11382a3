package app_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/inventory/internal/app"
	"github.com/shopstack/shopstack/apps/pkg/auth/authtest"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	storex "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// The identities of the Shop "acme" in namespace "shop".
const (
	inventoryID = "spiffe://cluster.local/ns/shop/sa/acme-inventory"
	orderID     = "spiffe://cluster.local/ns/shop/sa/acme-order"
	paymentID   = "spiffe://cluster.local/ns/shop/sa/acme-payment"
	issuerURL   = "https://acme.example/auth"
	audience    = "shopstack"
)

// One PostgreSQL for the package; each test gets its own role and database.
var pgShared testenv.SharedPostgres

func TestMain(m *testing.M) {
	code := m.Run()
	pgShared.Stop()
	os.Exit(code)
}

func sharedPostgres(t *testing.T) *testenv.Postgres {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL and Redis; skipped under -short")
	}
	return pgShared.Get(t)
}

// service is a running inventory service with clients for each kind of
// caller and a direct line to its database.
type service struct {
	app      *app.App
	redis    *testenv.Redis
	db       *pgxpool.Pool
	issuer   *authtest.Issuer
	ca       *mtlstest.CA
	public   string // https://127.0.0.1:port of the public listener
	internal string // https://127.0.0.1:port of the internal listener
	ops      string
	anon     *http.Client // TLS, no client certificate
	order    *http.Client // mTLS as the order service
	payment  *http.Client // mTLS as the payment service
}

type option func(*app.Config)

func sweepEvery(d time.Duration) option { return func(c *app.Config) { c.SweepInterval = d } }

func startService(t *testing.T, opts ...option) *service {
	t.Helper()
	pg := sharedPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	name, password := pgShared.NewDatabase(t, "inventory")
	// Postgres and Redis trust the data tier's CA; the service's own mTLS
	// identity comes from the Shop's CA.
	dataTLS := pg.CA.TLSDir(t, pg.CA.ClientCert(t, "inventory"))
	pgEnv := pg.ServiceEnv(t, name, password)
	pgEnv[storex.EnvTLSDir] = dataTLS
	pgCfg, err := storex.FromEnv(config.Map(pgEnv))
	if err != nil {
		t.Fatal(err)
	}
	pgCfg.StartupTimeout = 10 * time.Second
	pgCfg.MaxConns = 20

	rd := testenv.StartRedis(t, testenv.RedisOptions{CA: pg.CA})
	redisEnv := rd.ServiceEnv(t, "inventory")
	redisEnv[redisx.EnvTLSDir] = dataTLS
	redisCfg, err := redisx.FromEnv(config.Map(redisEnv))
	if err != nil {
		t.Fatal(err)
	}

	ca := mtlstest.NewCA(t, "acme")
	issuer := authtest.NewIssuer(t, issuerURL, audience)
	cfg := app.Config{
		Common: config.Common{
			Service: "inventory", Shop: "acme", Mesh: config.MeshNone,
			PublicAddr: "127.0.0.1:0", InternalAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0",
			TLSDir:   mtlstest.ServiceDir(t, ca, inventoryID, "localhost").Dir,
			JWKSFile: issuer.JWKSFile, JWTIssuer: issuerURL, JWTAudience: audience,
			AllowedCallers: []string{orderID},
			LogLevel:       slog.LevelInfo, BodyLimit: config.DefaultBodyLimit,
			ShutdownGrace: 5 * time.Second,
		},
		Postgres:      pgCfg,
		Redis:         redisCfg,
		RateLimit:     redisx.Limit{Rate: 10_000, Burst: 10_000},
		SweepInterval: time.Hour,
	}
	for _, o := range opts {
		o(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Server.Listen(); err != nil {
		a.Close()
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("inventory stopped with %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("inventory did not stop within 15s")
		}
	})

	db, err := pgxpool.New(ctx, pg.DSN(name, password, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	s := &service{
		app: a, redis: rd, db: db, issuer: issuer, ca: ca,
		public:   "https://" + a.Server.Addr("public"),
		internal: "https://" + a.Server.Addr("internal"),
		ops:      "http://" + a.Server.Addr("ops"),
	}
	s.anon = s.client(t, "")
	s.order = s.client(t, orderID)
	s.payment = s.client(t, paymentID)
	return s
}

// client trusts the Shop's CA and, when id is set, presents a certificate
// for that SPIFFE ID.
func (s *service) client(t *testing.T, id string) *http.Client {
	t.Helper()
	conf := &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if id != "" {
		leaf := s.ca.Issue(t, id, nil)
		cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: conf, MaxIdleConnsPerHost: 128, ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// errorCode is the code of an error answer.
func (r response) errorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r response) errorField() string {
	e, _ := r.Body["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

// do sends a request; body may be a string (sent as is) or a value (sent
// as JSON). A transport error fails the test.
func do(t *testing.T, c *http.Client, method, url string, body any, header ...string) response {
	t.Helper()
	res, err := send(c, method, url, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res
}

func send(c *http.Client, method, url string, body any, header ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = strings.NewReader(string(data))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return response{}, err
	}
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.Body)
	return out, nil
}

func (s *service) adminToken(t *testing.T) string {
	return "Bearer " + s.issuer.Token(t, "admin-1", "admin")
}

// putProduct stores a product through the API as an admin.
func (s *service) putProduct(t *testing.T, sku string, priceCents int64, stock int) response {
	t.Helper()
	res := do(t, s.anon, "PUT", s.public+"/v1/products/"+sku,
		map[string]any{"name": "Product " + sku, "price_cents": priceCents, "currency": "EUR", "stock": stock},
		"Authorization", s.adminToken(t))
	if res.Status != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", sku, res.Status, res.Raw)
	}
	return res
}

// reserve asks for a reservation as the order service.
func (s *service) reserve(t *testing.T, order string, ttlSeconds int, items ...any) response {
	t.Helper()
	return do(t, s.order, "POST", s.internal+"/v1/reservations",
		map[string]any{"order_id": order, "items": items, "ttl_seconds": ttlSeconds}, "Idempotency-Key", order)
}

func item(sku string, quantity int) map[string]any {
	return map[string]any{"sku": sku, "quantity": quantity}
}

// stock reads a product's counts straight from the database.
func (s *service) stock(t *testing.T, sku string) (onHand, reserved int) {
	t.Helper()
	if err := s.db.QueryRow(context.Background(), `SELECT on_hand, reserved FROM products WHERE sku = $1`, sku).
		Scan(&onHand, &reserved); err != nil {
		t.Fatalf("reading stock of %s: %v", sku, err)
	}
	return onHand, reserved
}

func (s *service) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// newOrderID is a fresh random UUID (version 4).
func newOrderID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
