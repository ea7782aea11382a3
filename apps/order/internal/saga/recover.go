package saga

import (
	"context"
	"log/slog"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/order/internal/store"
)

// RecoverBatch is how many orders one recovery pass takes over.
const RecoverBatch = 20

// Recover finishes or undoes up to RecoverBatch orders whose saga stopped
// (their lease ran out) and returns how many it handled:
//
//   - pending or reserved: the card is gone, so the order cannot go on. If
//     a charge was sent without its answer being saved, payment is asked
//     for the order's payments first: a captured charge is refunded, none
//     means nothing was charged. Then what the order holds is released and
//     it fails as interrupted. While payment cannot be asked (or the charge
//     is still pending there, or the refund fails) the order is left as it
//     is, for a pass after its lease runs out again;
//   - charged: the reservation is committed and the order confirmed (or,
//     when the commit fails, refunded and failed);
//   - failed but not fully undone: the undo is tried again; an order whose
//     charge was in doubt gets its order.failed event once it is settled.
func (s *Saga) Recover(ctx context.Context) (int, error) {
	orders, err := s.cfg.Store.ClaimStale(ctx, s.cfg.Lease, RecoverBatch)
	if err != nil {
		return 0, err
	}
	for _, o := range orders {
		s.log.InfoContext(ctx, "recovering order", slog.String("order_id", o.ID), slog.String("status", string(o.Status)))
		switch o.Status {
		case domain.StatusPending, domain.StatusReserved:
			err = s.recoverInterrupted(ctx, o)
		case domain.StatusCharged:
			_, err = s.complete(ctx, o)
		case domain.StatusFailed:
			// The event of an order failed with its charge in doubt was
			// held back until the charge is settled.
			eventDue := o.ChargeUnknown
			o.Compensated = s.undo(ctx, &o, false)
			var event *store.Event
			if eventDue && !o.ChargeUnknown {
				event = &store.Event{Type: EventFailed, Payload: eventPayload(o)}
			}
			outcome := "compensated"
			if !o.Compensated {
				outcome = "incomplete"
			}
			err = s.save(ctx, o, "recover", outcome, "", event)
			if err == nil && event != nil {
				s.cfg.Notify()
			}
		}
		if err != nil {
			return 0, err
		}
	}
	return len(orders), nil
}

// recoverInterrupted fails an order whose saga stopped before its charge
// was saved, after settling the charge with payment: a captured charge is
// refunded before the order is failed. When that cannot be done now, the
// order is left as it is (still leased by this pass) for a later pass.
func (s *Saga) recoverInterrupted(ctx context.Context, o domain.Order) error {
	refunded := false
	if o.ChargeUnknown {
		state := s.settleCharge(ctx, &o)
		if state == chargeSettled && o.PaymentID != "" {
			refunded = s.refund(ctx, &o)
			if !refunded {
				state = chargeUnreachable
			}
		}
		if state != chargeSettled || (o.PaymentID != "" && !refunded) {
			s.journal(ctx, o.ID, "recover", "deferred", state.String())
			return nil
		}
	}
	_, err := s.failRefunded(ctx, o, domain.ReasonInterrupted, "recover", nil, refunded)
	return err
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
