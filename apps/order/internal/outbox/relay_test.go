package outbox_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/order/internal/ordertest"
	"github.com/shopstack/shopstack/apps/order/internal/outbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ordertest.StopPostgres()
	os.Exit(code)
}

// Several replicas relaying at once deliver every row, each once.
func TestRelaysShareTheOutbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool := ordertest.NewDB(t)
	_, rdb := ordertest.Redis(t)
	const rows = 250
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (order_id, event_type, payload)
		SELECT gen_random_uuid(), 'order.confirmed', jsonb_build_object('n', n) FROM generate_series(1, $1) n`, rows); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for range 3 {
		relay := outbox.New(outbox.Config{Pool: pool, Redis: rdb, Batch: 20})
		wg.Go(func() {
			for range 100 {
				if n, err := relay.RelayOnce(ctx); err != nil {
					t.Error(err)
					return
				} else if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()

	if n, err := outbox.Pending(ctx, pool); err != nil || n != 0 {
		t.Fatalf("%d pending (%v)", n, err)
	}
	msgs, err := rdb.XRange(ctx, outbox.Stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := fmt.Sprint(m.Values["outbox_id"])
		if seen[id] {
			t.Errorf("outbox row %s sent twice", id)
		}
		seen[id] = true
	}
	if len(seen) != rows {
		t.Errorf("%d distinct events on the stream, want %d", len(seen), rows)
	}
}

// The order service's Redis user may write only under order:*, which is
// where the stream lives.
func TestStreamKeyIsWithinTheACL(t *testing.T) {
	_, rdb := ordertest.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "inventory:events", Values: []any{"k", "v"}}).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("XADD outside order:* got %v, want NOPERM: the ACL is not in force", err)
	}
}
