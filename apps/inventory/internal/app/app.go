// Package app assembles the inventory service from its configuration: the
// database, the catalog cache, the HTTP API on the three listeners with
// TLS, mTLS and token checks for the mesh mode, and the reservation
// sweeper. main and the tests build the service the same way, through New.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/inventory/internal/cache"
	inventoryhttp "github.com/shopstack/shopstack/apps/inventory/internal/http"
	"github.com/shopstack/shopstack/apps/inventory/internal/store"
	"github.com/shopstack/shopstack/apps/inventory/internal/sweeper"
	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/edge"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	storex "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// Settings of the inventory service beyond the shared ones.
const (
	EnvSweepInterval = "SHOPSTACK_RESERVATION_SWEEP_INTERVAL"
	EnvCacheTTL      = "SHOPSTACK_CATALOG_CACHE_TTL"
	EnvForwardedHops = "SHOPSTACK_FORWARDED_HOPS"
)

// Config is everything the service reads at start.
type Config struct {
	Common    config.Common
	Postgres  storex.Config
	Redis     redisx.Config
	RateLimit redisx.Limit
	// SweepInterval is how often overdue reservations are released.
	SweepInterval time.Duration
	// CacheTTL bounds the life of a catalog cache entry.
	CacheTTL time.Duration
	// ForwardedHops is how many proxies append to X-Forwarded-For in front
	// of the public listener (the Shop's gateway: 1), for rate limiting
	// per client.
	ForwardedHops int
	// Edge admits clients by address (spec.gateway.allowedSourceRanges
	// under mesh none).
	Edge edge.Config
}

// Load reads the configuration through lookup and reports every problem.
func Load(lookup config.Lookup) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Common:        r.Common(),
		SweepInterval: r.Duration(EnvSweepInterval, sweeper.DefaultInterval),
		CacheTTL:      r.Duration(EnvCacheTTL, cache.DefaultTTL),
		ForwardedHops: r.Int(EnvForwardedHops, 1),
	}
	errs := []error{r.Err()}
	var err error
	if cfg.Postgres, err = storex.FromEnv(lookup); err != nil {
		errs = append(errs, err)
	}
	if cfg.Redis, err = redisx.FromEnv(lookup); err != nil {
		errs = append(errs, err)
	}
	if cfg.RateLimit, err = redisx.LimitFromEnv(lookup); err != nil {
		errs = append(errs, err)
	}
	if cfg.Edge, err = edge.FromEnv(lookup); err != nil {
		errs = append(errs, err)
	}
	if cfg.SweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("%s: must be greater than zero", EnvSweepInterval))
	}
	if cfg.ForwardedHops < 0 {
		errs = append(errs, fmt.Errorf("%s: must not be negative", EnvForwardedHops))
	}
	return cfg, errors.Join(errs...)
}

// App is an assembled inventory service.
type App struct {
	// Server runs the listeners; Listen it first to learn their addresses.
	Server  *httpx.Server
	Store   *store.Store
	Catalog *cache.Catalog

	sweeper *sweeper.Sweeper
	pool    *pgxpool.Pool
	rdb     *redis.Client
}

// New connects to the database (waiting for it as configured), migrates
// it, and assembles the service. Redis is not contacted: the service runs
// without it. Close releases what New opened when Run is not called.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *App, err error) {
	metrics := telemetry.NewMetrics()
	a := &App{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	sec, err := mtls.NewSetup(cfg.Common.Mesh, cfg.Common.TLSDir, mtls.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	authorize, err := sec.Authorize(cfg.Common.AllowedCallers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvAllowedCallers, err)
	}
	tokens, err := auth.NewVerifier(auth.VerifierConfig{
		JWKSFile: cfg.Common.JWKSFile, Issuer: cfg.Common.JWTIssuer, Audience: cfg.Common.JWTAudience, Logger: logger,
	})
	if err != nil {
		return nil, err
	}

	if a.pool, err = storex.Open(ctx, cfg.Postgres); err != nil {
		return nil, err
	}
	a.Store = store.New(a.pool)
	if err := a.Store.Migrate(ctx); err != nil {
		return nil, err
	}
	if a.rdb, err = redisx.Open(cfg.Redis); err != nil {
		return nil, err
	}
	a.Catalog, err = cache.New(a.Store, a.rdb, cache.Options{TTL: cfg.CacheTTL, Logger: logger, Registerer: metrics.Registry})
	if err != nil {
		return nil, err
	}
	limiter, err := redisx.NewLimiter(a.rdb, cfg.Common.Service, cfg.RateLimit,
		redisx.LimiterOptions{Registerer: metrics.Registry, Logger: logger})
	if err != nil {
		return nil, err
	}

	api := &inventoryhttp.API{
		Catalog: a.Catalog,
		Stock:   cache.InvalidatingStock{Next: a.Store, Catalog: a.Catalog},
		Tokens:  tokens,

		Reservations: inventoryhttp.NewReservationsCounter(metrics.Registry),
	}
	a.sweeper = &sweeper.Sweeper{
		Expire:   a.Store.ExpireDue,
		Expired:  func(ctx context.Context, _ int) { a.Catalog.Invalidate(ctx) },
		Interval: cfg.SweepInterval,
		Logger:   logger,
	}
	public := cfg.Edge.Guard()(limiter.Middleware(redisx.MiddlewareOptions{ForwardedHops: cfg.ForwardedHops})(api.Public()))
	a.Server = &httpx.Server{
		PublicAddr: cfg.Common.PublicAddr, InternalAddr: cfg.Common.InternalAddr, OpsAddr: cfg.Common.OpsAddr,
		Public: public, PublicTLS: sec.PublicTLS(),
		Internal: authorize(api.Internal()), InternalTLS: sec.InternalTLS(),
		Checks:        append(sec.Checks(), httpx.Check{Name: "postgres", Func: a.Store.Ping}),
		Logger:        logger,
		Metrics:       metrics,
		BodyLimit:     cfg.Common.BodyLimit,
		ShutdownGrace: cfg.Common.ShutdownGrace,
		DrainDelay:    cfg.Common.DrainDelay,
	}
	return a, nil
}

// Run serves and sweeps until ctx is done, drains the listeners, then
// closes the database and Redis clients.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	sweepCtx, stopSweeping := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.sweeper.Run(sweepCtx) })
	err := a.Server.Run(ctx)
	stopSweeping()
	wg.Wait()
	return err
}

// Close releases the database pool and the Redis client.
func (a *App) Close() {
	if a.rdb != nil {
		_ = a.rdb.Close()
		a.rdb = nil
	}
	if a.pool != nil {
		a.pool.Close()
		a.pool = nil
	}
}
