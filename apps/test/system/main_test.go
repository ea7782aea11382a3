// Package system proves the app tier end to end on one machine: real
// PostgreSQL, real Redis, real mTLS and the four services as real processes
// (see apps/internal/stack), driven only through their HTTP APIs and, to
// check what was stored, their databases.
package system

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// st is the stack every test of the package shares; tests keep to their own
// products and users so they do not see each other's effects.
var st *stack.Stack

// breakerCooldown is short so the payment-down test can watch the breaker
// close again within its time budget.
const breakerCooldown = 2 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("system tests skipped under -short: they start PostgreSQL, Redis and the four services as processes")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shopstack-system-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, err = stack.Start(ctx, stack.Options{
		Dir: dir,
		// Every test client shares 127.0.0.1, so the per-client limit is
		// raised out of the way; the limiter itself still runs.
		RateLimitRPS: 100000, RateLimitBurst: 100000,
		Env: map[string]map[string]string{
			stack.Order: {
				"SHOPSTACK_BREAKER_COOLDOWN": breakerCooldown.String(),
				"SHOPSTACK_PAYMENT_TIMEOUT":  "3s",
			},
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the stack:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "stack files and logs kept in %s\n%s", dir, st.LogTails(20))
	}
	st.Close()
	if code == 0 {
		_ = os.RemoveAll(dir)
	}
	return code
}
