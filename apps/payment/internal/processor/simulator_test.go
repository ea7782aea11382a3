package processor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
)

func TestSimulator(t *testing.T) {
	for number, want := range map[string]error{
		CardApprove:        nil,
		"5555555555554444": nil,
		CardDecline:        domain.ErrCardDeclined,
		CardTimeout:        context.DeadlineExceeded,
		"4242424242424241": domain.ErrInvalidCardNumber,
	} {
		t.Run(number, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := Simulator{}.Charge(ctx, domain.Card{Number: number}, 100, "EUR")
			if !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, want)
			}
			if number == CardTimeout && time.Since(start) < 50*time.Millisecond {
				t.Error("the timeout card answered before the deadline")
			}
		})
	}
}
