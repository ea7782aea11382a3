// Command payment is shopstack's payment service: charges and refunds on
// the internal mTLS listener for the order service, one charge per
// Idempotency-Key, card data sealed with the operator-managed key.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shopstack/shopstack/apps/payment/internal/crypto"
	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	paymenthttp "github.com/shopstack/shopstack/apps/payment/internal/http"
	"github.com/shopstack/shopstack/apps/payment/internal/processor"
	paymentstore "github.com/shopstack/shopstack/apps/payment/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// Settings of the payment service beyond the common ones.
const (
	// EnvEncryptionKeyFile names the 32-byte AES-256 key; the operator sets it.
	EnvEncryptionKeyFile = "SHOPSTACK_ENCRYPTION_KEY_FILE"
	// EnvProcessorTimeout bounds a charge at the processor; it must stay
	// below the order service's timeout for payment calls.
	EnvProcessorTimeout = "SHOPSTACK_PAYMENT_PROCESSOR_TIMEOUT"

	defaultKeyFile = "/etc/shopstack/payment/encryption.key"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	r := config.NewReader(config.Env())
	common := r.Common()
	keyFile := r.File(EnvEncryptionKeyFile, defaultKeyFile)
	processorTimeout := r.Duration(EnvProcessorTimeout, domain.DefaultProcessorTimeout)
	if err := r.Err(); err != nil {
		return err
	}
	key, err := crypto.LoadKeyFile(keyFile)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvEncryptionKeyFile, err)
	}
	keys, err := crypto.NewKeyring(crypto.DefaultKeyID, key)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvEncryptionKeyFile, err)
	}
	dbConfig, err := store.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}

	logger := telemetry.NewLogger(os.Stderr, common.LogLevel, common.Service)
	slog.SetDefault(logger)
	metrics := telemetry.NewMetrics()
	sec, err := mtls.NewSetup(common.Mesh, common.TLSDir, mtls.WithLogger(logger))
	if err != nil {
		return err
	}
	authorize, err := sec.Authorize(common.AllowedCallers)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvAllowedCallers, err)
	}

	pool, err := store.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := paymentstore.Migrate(ctx, pool); err != nil {
		return err
	}
	payments := &domain.Service{
		Repo: paymentstore.New(pool), Processor: processor.Simulator{}, Sealer: keys,
		ProcessorTimeout: processorTimeout,
		Charges:          domain.NewChargesCounter(metrics.Registry),
	}

	srv := &httpx.Server{
		PublicAddr: common.PublicAddr, InternalAddr: common.InternalAddr, OpsAddr: common.OpsAddr,
		Public: paymenthttp.Public(), PublicTLS: sec.PublicTLS(),
		Internal: authorize(paymenthttp.Internal(payments)), InternalTLS: sec.InternalTLS(),
		Checks: append(sec.Checks(), httpx.Check{Name: "postgres", Func: func(ctx context.Context) error {
			return store.Ping(ctx, pool)
		}}),
		Logger: logger, Metrics: metrics, BodyLimit: common.BodyLimit,
		ShutdownGrace: common.ShutdownGrace, DrainDelay: common.DrainDelay,
	}
	return srv.Run(ctx)
}
