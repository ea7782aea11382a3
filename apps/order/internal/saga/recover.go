package saga

import (
	"context"
	"log/slog"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
)

// RecoverBatch is how many orders one recovery pass takes over.
const RecoverBatch = 20

// Recover finishes or undoes up to RecoverBatch orders whose saga stopped
// (their lease ran out) and returns how many it handled:
//
//   - pending or reserved: the card is gone, so the order cannot go on; what
//     it may hold is released and it fails as interrupted;
//   - charged: the reservation is committed and the order confirmed (or,
//     when the commit fails, refunded and failed);
//   - failed but not fully undone: the undo is tried again.
func (s *Saga) Recover(ctx context.Context) (int, error) {
	orders, err := s.cfg.Store.ClaimStale(ctx, s.cfg.Lease, RecoverBatch)
	if err != nil {
		return 0, err
	}
	for _, o := range orders {
		s.log.InfoContext(ctx, "recovering order", slog.String("order_id", o.ID), slog.String("status", string(o.Status)))
		switch o.Status {
		case domain.StatusPending, domain.StatusReserved:
			_, err = s.fail(ctx, o, nil, domain.ReasonInterrupted, "recover", nil)
		case domain.StatusCharged:
			_, err = s.complete(ctx, o)
		case domain.StatusFailed:
			o.Compensated = s.undo(ctx, &o, nil)
			err = s.save(ctx, o, "recover", "compensated", "", nil)
		}
		if err != nil {
			return 0, err
		}
	}
	return len(orders), nil
}

// RecoverLoop runs Recover at start until nothing is left (at most
// maxStartPasses passes), then every interval until ctx is done.
func (s *Saga) RecoverLoop(ctx context.Context, interval time.Duration) {
	const maxStartPasses = 50
	for range maxStartPasses {
		n, err := s.Recover(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "recovery pass failed", slog.Any("error", err))
			break
		}
		if n < RecoverBatch {
			break
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Recover(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "recovery pass failed", slog.Any("error", err))
			}
		}
	}
}
