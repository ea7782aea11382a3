// Package sweeper releases reservations nobody committed before their
// deadline. Every replica runs one; the store's SKIP LOCKED query lets them
// share the work instead of queueing behind each other.
package sweeper

import (
	"context"
	"log/slog"
	"time"
)

// Defaults of Sweeper.
const (
	DefaultInterval = 5 * time.Second
	DefaultBatch    = 100
	// DefaultMaxBatches bounds one sweep, so a backlog is worked off over
	// several ticks instead of one long burst.
	DefaultMaxBatches = 10
	// DefaultTimeout bounds one batch.
	DefaultTimeout = 10 * time.Second
)

// Sweeper calls Expire on every tick until its context ends.
type Sweeper struct {
	// Expire releases up to limit overdue reservations and says how many.
	Expire func(ctx context.Context, limit int) (int, error)
	// Expired, when set, is told after reservations were released.
	Expired func(ctx context.Context, n int)

	Interval   time.Duration
	Batch      int
	MaxBatches int
	Timeout    time.Duration
	Logger     *slog.Logger
}

func (s *Sweeper) defaults() {
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	if s.Batch <= 0 {
		s.Batch = DefaultBatch
	}
	if s.MaxBatches <= 0 {
		s.MaxBatches = DefaultMaxBatches
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
}

// Run sweeps every Interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context) {
	s.defaults()
	ticker := time.NewTicker(s.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			s.Sweep(ctx)
		}
	}
}

// Sweep releases overdue reservations, at most MaxBatches batches of Batch,
// and returns how many it released.
func (s *Sweeper) Sweep(ctx context.Context) int {
	s.defaults()
	total := 0
	for range s.MaxBatches {
		bctx, cancel := context.WithTimeout(ctx, s.Timeout)
		n, err := s.Expire(bctx, s.Batch)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.Logger.WarnContext(ctx, "expiring reservations failed; retrying at the next tick", slog.Any("error", err))
			}
			break
		}
		total += n
		if n < s.Batch {
			break
		}
	}
	if total > 0 {
		s.Logger.InfoContext(ctx, "expired reservations released", slog.Int("count", total))
		if s.Expired != nil {
			s.Expired(ctx, total)
		}
	}
	return total
}
