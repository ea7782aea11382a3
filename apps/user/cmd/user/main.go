// Command user is the shopstack user service: accounts, password logins and
// the issuer of the Shop's access tokens. See apps/API.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
	"github.com/shopstack/shopstack/apps/user/internal/account"
	userhttp "github.com/shopstack/shopstack/apps/user/internal/http"
	"github.com/shopstack/shopstack/apps/user/internal/password"
	"github.com/shopstack/shopstack/apps/user/internal/store"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "user:", err)
		os.Exit(1)
	}
}

// startupTimeout bounds the work before serving: migrations and the admin.
const startupTimeout = 2 * time.Minute

func run(ctx context.Context) error {
	cfg, err := loadConfig(config.Env())
	if err != nil {
		return err
	}
	logger := telemetry.NewLogger(os.Stderr, cfg.LogLevel, cfg.Service)
	slog.SetDefault(logger)
	logger.Info("starting", slog.String("version", version), slog.String("mesh", string(cfg.Mesh)))
	metrics := telemetry.NewMetrics()

	sec, err := mtls.NewSetup(cfg.Mesh, cfg.TLSDir, mtls.WithLogger(logger))
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		JWKSFile: cfg.JWKSFile, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: logger,
	})
	if err != nil {
		return err
	}
	signer, err := auth.NewSigner(auth.SignerConfig{
		KeyFile: cfg.SigningKeyFile, KeyIDFile: cfg.KeyIDFile, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: logger,
	})
	if err != nil {
		return err
	}

	startCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	pool, err := pkgstore.Open(startCtx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.Migrate(startCtx, pool); err != nil {
		return err
	}

	hasher, err := password.New(password.Config{MemoryBudget: cfg.HashBudget})
	if err != nil {
		return err
	}
	metrics.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "password_hashes_in_flight", Help: "Password hashes running now.",
		}, func() float64 { return float64(hasher.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "password_hash_concurrency_limit", Help: "Most password hashes that may run at once (memory budget / memory per hash).",
		}, func() float64 { return float64(hasher.Concurrency()) }),
	)
	logger.Info("password hashing", slog.Int("concurrency", hasher.Concurrency()),
		slog.Int64("memory_budget_bytes", cfg.HashBudget), slog.Int("memory_per_hash_kib", int(hasher.Params().Memory)))

	accounts, err := account.New(account.Config{
		Store: store.New(pool), Hasher: hasher, Signer: signer,
		MaxFailures: cfg.MaxFailures, LockoutWindow: cfg.LockoutWindow,
		Registerer: metrics.Registry, Logger: logger,
	})
	if err != nil {
		return err
	}
	if _, err := accounts.EnsureAdmin(startCtx, cfg.AdminUsername, cfg.AdminPassword); err != nil {
		return fmt.Errorf("first admin from %s: %w", envAdminDir, err)
	}
	cancel()

	checks := append(sec.Checks(),
		httpx.Check{Name: "postgres", Func: func(ctx context.Context) error { return pkgstore.Ping(ctx, pool) }},
		httpx.Check{Name: "signing-key-published", Func: func(context.Context) error { return signingKeyPublished(signer, verifier) }},
	)
	// Per-client rate limit across replicas (open on a Redis outage: the
	// per-account login lockout in Postgres still holds), and under mesh
	// none only spec.gateway.allowedSourceRanges get in.
	public := http.Handler(userhttp.NewHandler(userhttp.Config{Accounts: accounts, Verifier: verifier, Issuer: cfg.JWTIssuer}))
	if cfg.Redis != nil {
		rdb, err := redisx.Open(*cfg.Redis)
		if err != nil {
			return err
		}
		defer rdb.Close()
		limiter, err := redisx.NewLimiter(rdb, cfg.Service, cfg.RateLimit, redisx.LimiterOptions{Registerer: metrics.Registry, Logger: logger})
		if err != nil {
			return err
		}
		public = limiter.Middleware(redisx.MiddlewareOptions{OnError: redisx.FailOpen, ForwardedHops: cfg.Edge.ForwardedHops})(public)
	} else {
		logger.Warn("no Redis configured: requests are not rate limited per client")
	}
	public = cfg.Edge.Guard()(public)
	srv := &httpx.Server{
		PublicAddr: cfg.PublicAddr, OpsAddr: cfg.OpsAddr,
		Public:    public,
		PublicTLS: sec.PublicTLS(),
		Checks:    checks,
		Logger:    logger, Metrics: metrics, BodyLimit: cfg.BodyLimit,
		ShutdownGrace: cfg.ShutdownGrace, DrainDelay: cfg.DrainDelay,
	}
	return srv.Run(ctx)
}

// signingKeyPublished fails while tokens signed with the current key would
// not verify against the published JWKS (a rotation half delivered): a
// replica in that state must not hand out tokens no service accepts.
func signingKeyPublished(signer *auth.Signer, verifier *auth.Verifier) error {
	tok, err := signer.Issue("readiness-check", nil)
	if err != nil {
		return err
	}
	if _, err := verifier.Verify(tok.Value); err != nil {
		return fmt.Errorf("the signing key %q is not in the published JWKS: %w", tok.KeyID, err)
	}
	return nil
}
