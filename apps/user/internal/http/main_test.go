package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/shopstack/apps/pkg/auth/authtest"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
	"github.com/shopstack/shopstack/apps/user/internal/account"
	userhttp "github.com/shopstack/shopstack/apps/user/internal/http"
	"github.com/shopstack/shopstack/apps/user/internal/password"
	"github.com/shopstack/shopstack/apps/user/internal/store"
)

// One PostgreSQL server for the package; every test gets its own role and
// database on it, as each service does in a Shop.
var pgShared testenv.SharedPostgres

func TestMain(m *testing.M) {
	code := m.Run()
	pgShared.Stop()
	os.Exit(code)
}

const (
	testAudience  = "shopstack:shop/acme"
	adminUsername = "admin"
	adminPassword = "admin-password-from-the-secret"
	bodyLimit     = 16 << 10
)

// env is a running user API on a fresh database.
type env struct {
	URL       string
	IssuerURL string // SHOPSTACK_JWT_ISSUER: the server's URL
	Pool      *pgxpool.Pool
	Issuer    *authtest.Issuer
	Accounts  *account.Service
	Registry  *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pg := pgShared.Get(t)
	name, pw := pgShared.NewDatabase(t, "user")
	vars := pg.ServiceEnv(t, name, pw)
	vars["SHOPSTACK_TLS_DIR"] = pg.CA.TLSDir(t, nil) // verify-full against the test CA
	cfg, err := pkgstore.FromEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	cfg.StartupTimeout = 10 * time.Second
	ctx := testContext(t)
	pool, err := pkgstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}

	hasher, err := password.New(password.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// The issuer is the test server's own URL, so standard OIDC clients can
	// discover it.
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	issuerURL := "http://" + srv.Listener.Addr().String()
	issuer := authtest.NewIssuer(t, issuerURL, testAudience)
	logger := slog.New(slog.DiscardHandler)
	metrics := telemetry.NewMetrics()
	accounts, err := account.New(account.Config{
		Store: store.New(pool), Hasher: hasher, Signer: issuer.Signer, Registerer: metrics.Registry, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.EnsureAdmin(ctx, adminUsername, adminPassword); err != nil {
		t.Fatal(err)
	}
	api := userhttp.NewHandler(userhttp.Config{Accounts: accounts, Verifier: issuer.Verifier(t), Issuer: issuerURL})
	srv.Config.Handler = httpx.Instrument(api, logger, metrics, bodyLimit)
	srv.Start()
	return &env{URL: srv.URL, IssuerURL: issuerURL, Pool: pool, Issuer: issuer, Accounts: accounts, Registry: metrics.Registry}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// response is what a client saw.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// ErrorCode is error.code of an error body.
func (r response) ErrorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r response) ErrorField(t *testing.T) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

func (e *env) do(t *testing.T, method, path, contentType string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (e *env) register(t *testing.T, email, pw string) response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	return e.do(t, "POST", "/v1/users", "application/json", body)
}

func (e *env) token(t *testing.T, username, pw string) response {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}
	return e.do(t, "POST", "/v1/auth/token", "application/x-www-form-urlencoded", []byte(form.Encode()))
}

func (e *env) me(t *testing.T, token string) response {
	t.Helper()
	return e.do(t, "GET", "/v1/users/me", "", nil, "Authorization", "Bearer "+token)
}

func (e *env) countUsers(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.Pool.QueryRow(testContext(t), "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatalf("counting users: %v", err)
	}
	return n
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
}

func accessToken(t *testing.T, r response) string {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	tok, _ := r.JSON(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token in %s", r.Body)
	}
	return tok
}

func contains(s []byte, sub string) bool { return strings.Contains(string(s), sub) }
