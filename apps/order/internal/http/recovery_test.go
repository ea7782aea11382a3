package http_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/order/internal/ordertest"
	"github.com/shopstack/shopstack/apps/order/internal/saga"
	"github.com/shopstack/shopstack/apps/order/internal/store"
)

var leftSeq atomic.Int32

// leftBehind makes the state a process leaves when it dies in the middle of
// a saga: the downstream calls up to status were made, the order row says
// status, and its lease has run out (unless leased is true).
func (s *stack) leftBehind(t *testing.T, status domain.Status, leased bool) domain.Order {
	t.Helper()
	ctx := context.Background()
	o := domain.Order{
		ID:         fmt.Sprintf("00000000-0000-4000-a000-%012d", leftSeq.Add(1)),
		CustomerID: "carol", Items: []domain.Item{{SKU: book, Quantity: 1}}, Fingerprint: "f",
	}
	o.IdempotencyKey = o.ID
	o, _, err := s.store.Create(ctx, o, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Every state got as far as a reserve call.
	res, err := s.invClient.Reserve(ctx, o.ID, o.Items, saga.DefaultReservationTTL)
	if err != nil {
		t.Fatal(err)
	}
	switch status {
	case domain.StatusPending:
		o.ReserveUnknown = true // the answer was lost with the process
	case domain.StatusReserved, domain.StatusCharged:
		o.ReservationID, o.TotalCents, o.Currency = res.ID, res.TotalCents, res.Currency
	}
	if status == domain.StatusCharged {
		c, err := s.payClient.Charge(ctx, o.ID, o.TotalCents, o.Currency,
			domain.Card{Number: ordertest.CardApproved, ExpMonth: 12, ExpYear: time.Now().Year() + 1, CVC: "123"})
		if err != nil {
			t.Fatal(err)
		}
		o.PaymentID = c.ID
	}
	o.Status = status
	lease := -time.Second
	if leased {
		lease = time.Minute
	}
	if err := s.store.Save(ctx, o, store.Step{Name: "test", Outcome: "left"}, nil, lease); err != nil {
		t.Fatal(err)
	}
	return o
}

func (s *stack) reservationOf(t *testing.T, orderID string) string {
	t.Helper()
	for _, r := range s.inv.Reservations() {
		if r.OrderID == orderID {
			return r.Status
		}
	}
	return "none"
}

func TestRecovery(t *testing.T) {
	s := newStack(t, stackOptions{redis: true})
	ctx := context.Background()
	charged := s.leftBehind(t, domain.StatusCharged, false)
	reserved := s.leftBehind(t, domain.StatusReserved, false)
	pending := s.leftBehind(t, domain.StatusPending, false)
	running := s.leftBehind(t, domain.StatusReserved, true) // another process is still on it

	n, err := s.saga.Recover(ctx)
	if err != nil || n != 3 {
		t.Fatalf("recovered %d (%v), want 3", n, err)
	}

	t.Run("charged: committed and confirmed", func(t *testing.T) {
		o, err := s.store.Get(ctx, charged.ID)
		if err != nil || o.Status != domain.StatusConfirmed {
			t.Fatalf("order %+v (%v)", o, err)
		}
		if got := s.reservationOf(t, charged.ID); got != "committed" {
			t.Errorf("reservation %s", got)
		}
		if got := s.pay.CountByStatus(); got["captured"] != 1 || got["refunded"] != 0 {
			t.Errorf("charges %v", got)
		}
		s.waitForEvent(t, saga.EventConfirmed, charged.ID, 10*time.Second)
	})
	for name, o := range map[string]domain.Order{"reserved": reserved, "pending": pending} {
		t.Run(name+": released and failed", func(t *testing.T) {
			got, err := s.store.Get(ctx, o.ID)
			if err != nil || got.Status != domain.StatusFailed || got.Reason != domain.ReasonInterrupted || !got.Compensated {
				t.Fatalf("order %+v (%v)", got, err)
			}
			if r := s.reservationOf(t, o.ID); r != "released" {
				t.Errorf("reservation %s", r)
			}
			s.waitForEvent(t, saga.EventFailed, o.ID, 10*time.Second)
		})
	}
	t.Run("a leased saga is left alone", func(t *testing.T) {
		got, err := s.store.Get(ctx, running.ID)
		if err != nil || got.Status != domain.StatusReserved {
			t.Fatalf("order %+v (%v)", got, err)
		}
		if n, err := s.saga.Recover(ctx); err != nil || n != 0 {
			t.Fatalf("second pass recovered %d (%v)", n, err)
		}
	})
	if got := s.inv.Available(book); got != stock-2 {
		// The confirmed order's unit is sold; the running saga's is held.
		t.Errorf("available %d, want %d", got, stock-2)
	}
}

func TestRecoveryCommitFails(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := context.Background()
	o := s.leftBehind(t, domain.StatusCharged, false)
	s.inv.FailCommit.Store(true)
	if n, err := s.saga.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("recovered %d (%v)", n, err)
	}
	got, err := s.store.Get(ctx, o.ID)
	if err != nil || got.Status != domain.StatusFailed || got.Reason != domain.ReasonCommitFailed || !got.Compensated {
		t.Fatalf("order %+v (%v)", got, err)
	}
	if c := s.pay.CountByStatus(); c["refunded"] != 1 || c["captured"] != 0 {
		t.Errorf("charges %v", c)
	}
	if r := s.reservationOf(t, o.ID); r != "released" {
		t.Errorf("reservation %s", r)
	}
}
