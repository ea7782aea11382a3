package ordertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/order/internal/clients"
	"github.com/shopstack/shopstack/apps/order/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/breaker"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// One PostgreSQL server per test binary, started by the first test that
// needs it; every test gets a role and database of its own.
var pgShared testenv.SharedPostgres

// StopPostgres stops the shared server; call it from TestMain after m.Run.
func StopPostgres() { pgShared.Stop() }

// Postgres is the shared server.
func Postgres(t testing.TB) *testenv.Postgres {
	t.Helper()
	return pgShared.Get(t)
}

// DBEnv creates a fresh role and database and returns the variables the
// operator would give the order service for them (with SHOPSTACK_TLS_DIR).
func DBEnv(t testing.TB) map[string]string {
	t.Helper()
	pg := Postgres(t)
	name, password := pgShared.NewDatabase(t, fmt.Sprintf("order%d_", os.Getpid()))
	env := pg.ServiceEnv(t, name, password)
	env["SHOPSTACK_TLS_DIR"] = pg.CA.TLSDir(t, pg.CA.ClientCert(t, name))
	env["SHOPSTACK_SERVICE"] = "order"
	return env
}

// NewDB returns a pool on a fresh, migrated database, closed after the test.
func NewDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pkgstore.FromEnv(Lookup(DBEnv(t)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StartupTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pkgstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// Redis starts a Redis server with the order service's ACL user and
// returns it with a client logged in as that user.
func Redis(t testing.TB) (*testenv.Redis, *redis.Client) {
	t.Helper()
	r := testenv.StartRedis(t, testenv.RedisOptions{Services: []string{"order"}})
	return r, RedisClient(t, r, r.Addr())
}

// RedisClient connects as the order service to addr (the server or a proxy
// in front of it).
func RedisClient(t testing.TB, r *testenv.Redis, addr string) *redis.Client {
	t.Helper()
	env := r.ServiceEnv(t, "order")
	env["SHOPSTACK_REDIS_ADDR"] = addr
	env["SHOPSTACK_TLS_DIR"] = r.CA.TLSDir(t, r.CA.ClientCert(t, "order"))
	cfg, err := redisx.FromEnv(Lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := redisx.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// ClientOptions tune the order service's clients in a test.
type ClientOptions struct {
	Timeout         time.Duration // per call; zero: 2s
	BreakerFailures int           // zero: 5
	BreakerCooldown time.Duration // zero: a minute
}

// Clients are the order service's clients for the fakes, over mTLS as the
// order identity, checking the callees' SPIFFE IDs.
func Clients(t testing.TB, ca Identity, inv *Inventory, pay *Payment, opts ClientOptions) (*clients.Inventory, *clients.Payment) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.BreakerCooldown == 0 {
		opts.BreakerCooldown = time.Minute
	}
	src, err := mtls.NewSource(ca(t, OrderID), mtls.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	client := func(name, url, peer string) *clientx.Client {
		conf, err := src.ClientTLS(mtls.Peer{SPIFFEID: peer})
		if err != nil {
			t.Fatal(err)
		}
		c, err := clientx.New(clientx.Config{
			Name: name, BaseURL: url, TLS: conf, Timeout: opts.Timeout, Logger: discard,
			Breaker: breaker.Config{ConsecutiveFailures: opts.BreakerFailures, Cooldown: opts.BreakerCooldown},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	return clients.NewInventory(client("inventory", inv.URL, InventoryID)), clients.NewPayment(client("payment", pay.URL, PaymentID))
}

// Lookup reads a map like os.LookupEnv.
func Lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
