// Command inventory serves the shop's product catalog and stock
// reservations. Configuration comes from SHOPSTACK_* environment variables
// (see apps/API.md and the operator's internal/builder/services.go); every
// variable can also be given as a flag (SHOPSTACK_PUBLIC_ADDR as
// -public-addr) for running it outside a cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shopstack/shopstack/apps/inventory/internal/app"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
	storex "github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "inventory:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	config.DefineFlags(fs, config.CommonEnv...)
	config.DefineFlags(fs,
		storex.EnvHost, storex.EnvPort, storex.EnvDatabase, storex.EnvUser, storex.EnvPasswordFile, storex.EnvSSLMode,
		storex.EnvMaxConns, storex.EnvStatementTimeout, storex.EnvStartupTimeout,
		redisx.EnvAddr, redisx.EnvSentinels, redisx.EnvMasterName, redisx.EnvUser, redisx.EnvPasswordFile,
		redisx.EnvRateLimitRPS, redisx.EnvRateLimitBurst,
		app.EnvSweepInterval, app.EnvCacheTTL, app.EnvForwardedHops)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.Load(config.Layered(config.Flags(fs), config.Env()))
	if err != nil {
		return err
	}
	logger := telemetry.NewLogger(os.Stderr, cfg.Common.LogLevel, cfg.Common.Service)
	slog.SetDefault(logger)
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
