// Command order is the shopstack order service: it takes orders and runs
// each through a saga over the inventory and payment services, keeps them in
// PostgreSQL and publishes their events to Redis through an outbox.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/clients"
	orderhttp "github.com/shopstack/shopstack/apps/order/internal/http"
	"github.com/shopstack/shopstack/apps/order/internal/outbox"
	"github.com/shopstack/shopstack/apps/order/internal/saga"
	"github.com/shopstack/shopstack/apps/order/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/breaker"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/edge"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// Settings of the order service besides config.Common, the store's and
// Redis's.
const (
	EnvInventoryURL     = "SHOPSTACK_INVENTORY_URL"
	EnvPaymentURL       = "SHOPSTACK_PAYMENT_URL"
	EnvInventoryTimeout = "SHOPSTACK_INVENTORY_TIMEOUT"
	EnvPaymentTimeout   = "SHOPSTACK_PAYMENT_TIMEOUT"
	EnvBreakerFailures  = "SHOPSTACK_BREAKER_FAILURES"
	EnvBreakerCooldown  = "SHOPSTACK_BREAKER_COOLDOWN"
	EnvReservationTTL   = "SHOPSTACK_RESERVATION_TTL"
	EnvSagaLease        = "SHOPSTACK_SAGA_LEASE"
	EnvRecoverInterval  = "SHOPSTACK_RECOVER_INTERVAL"
	EnvOutboxInterval   = "SHOPSTACK_OUTBOX_INTERVAL"
)

type settings struct {
	common                          config.Common
	inventoryURL, paymentURL        string
	inventoryTimeout, paymentTimout time.Duration
	breakerFailures                 int
	breakerCooldown                 time.Duration
	reservationTTL, lease           time.Duration
	recoverInterval, outboxInterval time.Duration
}

func readSettings(lookup config.Lookup) (settings, error) {
	r := config.NewReader(lookup)
	s := settings{
		common:           r.Common(),
		inventoryURL:     r.Required(EnvInventoryURL),
		paymentURL:       r.Required(EnvPaymentURL),
		inventoryTimeout: r.Duration(EnvInventoryTimeout, 3*time.Second),
		paymentTimout:    r.Duration(EnvPaymentTimeout, 5*time.Second),
		breakerFailures:  r.Int(EnvBreakerFailures, 5),
		breakerCooldown:  r.Duration(EnvBreakerCooldown, 10*time.Second),
		reservationTTL:   r.Duration(EnvReservationTTL, saga.DefaultReservationTTL),
		lease:            r.Duration(EnvSagaLease, saga.DefaultLease),
		recoverInterval:  r.Duration(EnvRecoverInterval, 30*time.Second),
		outboxInterval:   r.Duration(EnvOutboxInterval, outbox.DefaultInterval),
	}
	if s.breakerFailures < 1 {
		r.Fail(EnvBreakerFailures, "must be at least 1")
	}
	for name, d := range map[string]time.Duration{
		EnvInventoryTimeout: s.inventoryTimeout, EnvPaymentTimeout: s.paymentTimout, EnvReservationTTL: s.reservationTTL,
		EnvSagaLease: s.lease, EnvRecoverInterval: s.recoverInterval, EnvOutboxInterval: s.outboxInterval,
	} {
		if d <= 0 {
			r.Fail(name, "must be greater than zero")
		}
	}
	// A saga makes at most about eight calls; its lease must outlast them
	// or a second replica could take over a running saga.
	if worst := 4*s.inventoryTimeout + 4*s.paymentTimout; s.lease > 0 && s.lease <= worst {
		r.Fail(EnvSagaLease, "must be longer than the calls of one saga can take (%s)", worst)
	}
	return s, r.Err()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "order:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := readSettings(config.Env())
	if err != nil {
		return err
	}
	common := cfg.common
	logger := telemetry.NewLogger(os.Stderr, common.LogLevel, common.Service)
	slog.SetDefault(logger)
	metrics := telemetry.NewMetrics()

	sec, err := mtls.NewSetup(common.Mesh, common.TLSDir, mtls.WithLogger(logger))
	if err != nil {
		return err
	}
	tokens, err := auth.NewVerifier(auth.VerifierConfig{
		JWKSFile: common.JWKSFile, Issuer: common.JWTIssuer, Audience: common.JWTAudience, Logger: logger,
	})
	if err != nil {
		return err
	}

	// Data: PostgreSQL (migrated at start) and Redis.
	dbConfig, err := pkgstore.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	pool, err := pkgstore.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool); err != nil {
		return err
	}
	redisConfig, err := redisx.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	rdb, err := redisx.Open(redisConfig)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()

	// Callees: mTLS checking who answers, a timeout per call, a breaker each.
	inventoryClient, err := newClient(sec, common, "inventory", cfg.inventoryURL, cfg.inventoryTimeout, cfg, logger)
	if err != nil {
		return err
	}
	defer inventoryClient.Close()
	paymentClient, err := newClient(sec, common, "payment", cfg.paymentURL, cfg.paymentTimout, cfg, logger)
	if err != nil {
		return err
	}
	defer paymentClient.Close()

	db := store.New(pool)
	relay := outbox.New(outbox.Config{Pool: pool, Redis: rdb, Interval: cfg.outboxInterval, Logger: logger})
	orders := saga.New(saga.Config{
		Store: db, Inventory: clients.NewInventory(inventoryClient), Payment: clients.NewPayment(paymentClient),
		ReservationTTL: cfg.reservationTTL, Lease: cfg.lease, Notify: relay.Notify, Logger: logger,
		Finished: saga.NewFinishedCounter(metrics.Registry),
	})

	// Requests per client are limited across replicas; a Redis outage lets
	// requests through rather than stopping sales.
	limit, err := redisx.LimitFromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	limiter, err := redisx.NewLimiter(rdb, common.Service, limit, redisx.LimiterOptions{Registerer: metrics.Registry, Logger: logger})
	if err != nil {
		return err
	}
	// Clients are told apart by the address the gateway saw; under mesh
	// none only spec.gateway.allowedSourceRanges get in.
	edgeCfg, err := edge.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	limited := func(h http.Handler) http.Handler {
		return edgeCfg.Guard()(limiter.Middleware(redisx.MiddlewareOptions{OnError: redisx.FailOpen, ForwardedHops: edgeCfg.ForwardedHops})(h))
	}
	handlers := &orderhttp.Handlers{Store: db, Saga: orders}

	// Background work stops with ctx and is waited for before the pool
	// and Redis client close.
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	wg.Go(func() { relay.Run(bg) })
	wg.Go(func() { orders.RecoverLoop(bg, cfg.recoverInterval) })

	checks := append(sec.Checks(),
		httpx.Check{Name: "postgres", Func: func(ctx context.Context) error { return pkgstore.Ping(ctx, pool) }},
	)
	srv := &httpx.Server{
		PublicAddr: common.PublicAddr, OpsAddr: common.OpsAddr,
		Public: limited(handlers.Routes(tokens)), PublicTLS: sec.PublicTLS(),
		Checks: checks, Logger: logger, Metrics: metrics, BodyLimit: common.BodyLimit,
		ShutdownGrace: common.ShutdownGrace, DrainDelay: common.DrainDelay,
	}
	err = srv.Run(ctx)
	cancelBG()
	return err
}

// newClient is the client for one callee. Under mesh none it checks that
// the callee holds a certificate for the URL's host and, when our own
// identity has the Kubernetes form, the callee's SPIFFE ID
// (<shop>-<callee> service account in our namespace).
func newClient(sec *mtls.Setup, common config.Common, name, rawURL string, timeout time.Duration, cfg settings, logger *slog.Logger) (*clientx.Client, error) {
	peer, err := mtls.PeerForURL(rawURL)
	if err != nil {
		return nil, err
	}
	if src := sec.Source(); src != nil && common.Shop != "" {
		if own := src.ID(); own.Namespace() != "" {
			peer.SPIFFEID = own.Sibling(common.Shop + "-" + name).String()
		}
	}
	tlsConfig, err := sec.ClientTLS(peer)
	if err != nil {
		return nil, err
	}
	c, err := clientx.New(clientx.Config{
		Name: name, BaseURL: rawURL, TLS: tlsConfig, Timeout: timeout, Logger: logger,
		Breaker: breaker.Config{ConsecutiveFailures: cfg.breakerFailures, Cooldown: cfg.breakerCooldown},
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("%s client", name), err)
	}
	return c, nil
}
