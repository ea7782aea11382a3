package store_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// One server for the package, started by the first test that needs it; each
// test gets its own role and database on it.
var pgShared = testenv.SharedPostgres{
	// A short deadlock_timeout makes the deadlock test quick.
	Options: testenv.PostgresOptions{Settings: map[string]string{"deadlock_timeout": "50ms"}},
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgShared.Stop()
	os.Exit(code)
}

func sharedPostgres(t *testing.T) *testenv.Postgres {
	t.Helper()
	return pgShared.Get(t)
}

// newDB creates a role and database of their own for the test and returns
// the configuration a service would have: TLS with its client certificate,
// SCRAM, the password in a file.
func newDB(t *testing.T) store.Config {
	t.Helper()
	pg := sharedPostgres(t)
	name, password := pgShared.NewDatabase(t, "svc")
	env := pg.ServiceEnv(t, name, password)
	env["SHOPSTACK_TLS_DIR"] = pg.CA.TLSDir(t, pg.CA.ClientCert(t, name))
	env["SHOPSTACK_SERVICE"] = name
	cfg, err := store.FromEnv(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StartupTimeout = 10 * time.Second
	return cfg
}

// openDB opens a pool on a fresh database, closed at the end of the test.
func openDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return open(t, newDB(t))
}

func open(t *testing.T, cfg store.Config) *pgxpool.Pool {
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

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(testContext(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t *testing.T, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(testContext(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
