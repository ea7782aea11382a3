package sweeper_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/inventory/internal/sweeper"
)

func TestSweepWorksOffABacklogInBoundedBatches(t *testing.T) {
	backlog := 25
	var calls, told int
	s := &sweeper.Sweeper{
		Expire: func(_ context.Context, limit int) (int, error) {
			calls++
			n := min(limit, backlog)
			backlog -= n
			return n, nil
		},
		Expired:    func(_ context.Context, n int) { told += n },
		Batch:      10,
		MaxBatches: 2,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if n := s.Sweep(t.Context()); n != 20 || calls != 2 || told != 20 {
		t.Fatalf("first sweep released %d in %d calls (told %d), want 20 in 2", n, calls, told)
	}
	if n := s.Sweep(t.Context()); n != 5 || backlog != 0 {
		t.Fatalf("second sweep released %d, want the last 5", n)
	}
}

func TestSweepStopsAtAnError(t *testing.T) {
	calls := 0
	s := &sweeper.Sweeper{
		Expire: func(context.Context, int) (int, error) { calls++; return 0, errors.New("database down") },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if n := s.Sweep(t.Context()); n != 0 || calls != 1 {
		t.Fatalf("released %d in %d calls, want 0 in 1", n, calls)
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ticks := make(chan struct{}, 100)
	s := &sweeper.Sweeper{
		Expire: func(context.Context, int) (int, error) {
			select {
			case ticks <- struct{}{}:
			default:
			}
			return 0, nil
		},
		Interval: 10 * time.Millisecond,
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case <-ticks:
	case <-time.After(5 * time.Second):
		t.Fatal("no sweep within 5s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
}
