// Package outbox relays the events the order service writes to its outbox
// table to the Redis stream order:events. Delivery is at least once: a row
// is marked sent only after XADD succeeded, in the transaction that locked
// it, so a crash in between sends it again (consumers deduplicate on the
// outbox_id field). Rows are locked with FOR UPDATE SKIP LOCKED, so any
// number of replicas relay side by side without sending a row twice in the
// normal course.
package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
)

// Stream is the Redis stream of order events. The order service's Redis
// ACL user may only touch keys under "order:".
const Stream = "order:events"

// Defaults of Config.
const (
	DefaultInterval  = time.Second
	DefaultBatch     = 100
	DefaultMaxLen    = 100_000
	DefaultRedisWait = 2 * time.Second
)

// Config tunes a Relay.
type Config struct {
	Pool     *pgxpool.Pool
	Redis    redis.Cmdable
	Interval time.Duration // between polls when idle
	Batch    int           // rows per transaction
	MaxLen   int64         // the stream is trimmed to about this many entries
	Logger   *slog.Logger
}

// Relay moves outbox rows to the stream.
type Relay struct {
	cfg  Config
	wake chan struct{}
}

// New returns a Relay.
func New(cfg Config) *Relay {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Relay{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Notify wakes the relay early, e.g. after an event was written.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	failures := 0
	for {
		// Drain what is waiting, a bounded number of batches at a time.
		for range 10 {
			n, err := r.RelayOnce(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				failures++
				if failures == 1 || failures%30 == 0 {
					r.cfg.Logger.WarnContext(ctx, "relaying order events failed; will retry", slog.Int("failures", failures), slog.Any("error", err))
				}
				break
			}
			if failures > 0 {
				r.cfg.Logger.InfoContext(ctx, "relaying order events again", slog.Int("after_failures", failures))
				failures = 0
			}
			if n < r.cfg.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// RelayOnce sends one batch of unsent rows and returns how many it sent.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	sent := 0
	err := pkgstore.InTx(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		sent = 0
		rows, err := tx.Query(ctx, `SELECT id, order_id::text, event_type, payload::text, created_at FROM outbox
			WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, r.cfg.Batch)
		if err != nil {
			return err
		}
		type row struct {
			id                    int64
			orderID, typ, payload string
			created               time.Time
		}
		batch, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
			var x row
			err := cr.Scan(&x.id, &x.orderID, &x.typ, &x.payload, &x.created)
			return x, err
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, DefaultRedisWait)
		defer cancel()
		ids := make([]int64, 0, len(batch))
		for _, x := range batch {
			err := r.cfg.Redis.XAdd(rctx, &redis.XAddArgs{
				Stream: Stream, MaxLen: r.cfg.MaxLen, Approx: true,
				Values: []any{
					"type", x.typ, "order_id", x.orderID, "outbox_id", strconv.FormatInt(x.id, 10),
					"created_at", x.created.UTC().Format(time.RFC3339Nano), "payload", x.payload,
				},
			}).Err()
			if err != nil {
				if len(ids) == 0 {
					return fmt.Errorf("XADD %s: %w", Stream, err)
				}
				break // mark what did go out
			}
			ids = append(ids, x.id)
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		sent = len(ids)
		return nil
	})
	return sent, err
}

// Pending counts unsent rows, for tests and diagnostics.
func Pending(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n)
	return n, err
}
