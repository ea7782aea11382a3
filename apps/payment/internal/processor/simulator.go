// Package processor is the built-in, deterministic payment processor
// simulator: the outcome depends on the card number only, so tests and
// demos can drive every path.
package processor

import (
	"context"
	"time"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
)

// Test card numbers with a fixed outcome. Any other Luhn-valid number is
// approved; a Luhn-invalid one is refused.
const (
	CardApprove = "4242424242424242"
	CardDecline = "4000000000000002"
	CardTimeout = "4000000000000119"
)

// maxHang bounds how long the timeout card blocks when the caller set no
// deadline, so nothing waits forever.
const maxHang = 30 * time.Second

// Simulator is the processor used by the service.
type Simulator struct{}

// Charge decides the outcome by card number. The timeout card blocks until
// ctx is done and returns its error: no answer, nothing charged.
func (Simulator) Charge(ctx context.Context, card domain.Card, _ int64, _ string) error {
	switch {
	case !domain.Luhn(card.Number):
		return domain.ErrInvalidCardNumber
	case card.Number == CardDecline:
		return domain.ErrCardDeclined
	case card.Number == CardTimeout:
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, maxHang)
			defer cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return ctx.Err()
}
