package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// leftCharging is an order whose process died after sending its charge and
// before saving the answer: reserved, its charge flagged unknown, its lease
// run out. captured says whether the charge reached payment (and was
// captured there); its payment ID is returned.
func (s *stack) leftCharging(t *testing.T, captured bool) (domain.Order, string) {
	t.Helper()
	o := s.leftBehind(t, domain.StatusReserved, false)
	o.ChargeUnknown = true
	paymentID := ""
	if captured {
		c, err := s.payClient.Charge(context.Background(), o.ID, o.TotalCents, o.Currency,
			domain.Card{Number: ordertest.CardApproved, ExpMonth: 12, ExpYear: time.Now().Year() + 1, CVC: "123"})
		if err != nil {
			t.Fatal(err)
		}
		paymentID = c.ID
	}
	if err := s.store.Save(context.Background(), o, store.Step{Name: "charge", Outcome: "started"}, nil, -time.Second); err != nil {
		t.Fatal(err)
	}
	return o, paymentID
}

// expireLease makes an order claimable by the next recovery pass, as the
// passing of its lease would.
func (s *stack) expireLease(t *testing.T, orderID string) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `UPDATE orders SET lease_until = now() - interval '1 second' WHERE id = $1`, orderID); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) chargeOf(t *testing.T, paymentID string) ordertest.Charge {
	t.Helper()
	for _, c := range s.pay.Charges() {
		if c.ID == paymentID {
			return c
		}
	}
	t.Fatalf("no charge %s", paymentID)
	return ordertest.Charge{}
}

// chargesFor counts payment's charges for an order.
func (s *stack) chargesFor(orderID string) int {
	n := 0
	for _, c := range s.pay.Charges() {
		if c.OrderID == orderID {
			n++
		}
	}
	return n
}

// failedPayload is the payload of an order.failed event on the stream.
func failedPayload(t *testing.T, m redis.XMessage) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal([]byte(fmt.Sprint(m.Values["payload"])), &p); err != nil {
		t.Fatalf("payload %v: %v", m.Values["payload"], err)
	}
	if _, ok := p["charge_unknown"]; ok {
		t.Errorf("the event still has charge_unknown: %v", p)
	}
	return p
}

// An order left between sending its charge and saving the answer is settled
// with payment: a captured charge is refunded before the order fails, a
// charge that never arrived means nothing to refund.
func TestRecoveryOfALostChargeAnswer(t *testing.T) {
	s := newStack(t, stackOptions{redis: true})
	ctx := context.Background()
	captured, paymentID := s.leftCharging(t, true)
	lost, _ := s.leftCharging(t, false)

	if n, err := s.saga.Recover(ctx); err != nil || n != 2 {
		t.Fatalf("recovered %d (%v), want 2", n, err)
	}

	t.Run("captured: refunded, released and failed", func(t *testing.T) {
		o, err := s.store.Get(ctx, captured.ID)
		if err != nil || o.Status != domain.StatusFailed || o.Reason != domain.ReasonInterrupted || !o.Compensated ||
			o.ChargeUnknown || o.PaymentID != paymentID {
			t.Fatalf("order %+v (%v)", o, err)
		}
		if c := s.chargeOf(t, paymentID); c.Status != "refunded" || c.RefundedCents != c.AmountCents {
			t.Errorf("charge %+v, want refunded in full", c)
		}
		if n := s.chargesFor(captured.ID); n != 1 {
			t.Errorf("%d charges for the order, want the one", n)
		}
		if r := s.reservationOf(t, captured.ID); r != "released" {
			t.Errorf("reservation %s", r)
		}
		if p := failedPayload(t, s.waitForEvent(t, saga.EventFailed, captured.ID, 10*time.Second)); p["payment_id"] != paymentID {
			t.Errorf("event payload %v, want payment_id %s", p, paymentID)
		}
	})
	t.Run("never arrived: failed without a refund or a charge", func(t *testing.T) {
		o, err := s.store.Get(ctx, lost.ID)
		if err != nil || o.Status != domain.StatusFailed || o.Reason != domain.ReasonInterrupted || !o.Compensated ||
			o.ChargeUnknown || o.PaymentID != "" {
			t.Fatalf("order %+v (%v)", o, err)
		}
		if n := s.chargesFor(lost.ID); n != 0 {
			t.Errorf("%d charges for the order, want none", n)
		}
		if r := s.reservationOf(t, lost.ID); r != "released" {
			t.Errorf("reservation %s", r)
		}
		if p := failedPayload(t, s.waitForEvent(t, saga.EventFailed, lost.ID, 10*time.Second)); p["payment_id"] != nil {
			t.Errorf("event payload %v, want no payment", p)
		}
	})
	if c := s.pay.CountByStatus(); c["refunded"] != 1 || c["captured"] != 0 {
		t.Errorf("charges %v", c)
	}
}

// While payment cannot be asked, or its charge is still pending, the order
// stays as it is; a later pass settles it.
func TestRecoveryWaitsForPayment(t *testing.T) {
	s := newStack(t, stackOptions{clients: ordertest.ClientOptions{Timeout: 300 * time.Millisecond, BreakerFailures: 2, BreakerCooldown: 50 * time.Millisecond}})
	ctx := context.Background()
	left := func(t *testing.T, id string, wantStep string) {
		t.Helper()
		o, err := s.store.Get(ctx, id)
		if err != nil || o.Status != domain.StatusReserved || !o.ChargeUnknown || o.PaymentID != "" {
			t.Fatalf("order %+v (%v), want it left reserved with its charge unknown", o, err)
		}
		if r := s.reservationOf(t, id); r != "reserved" {
			t.Errorf("reservation %s, want it still held", r)
		}
		steps, err := s.store.Steps(ctx, id)
		if err != nil || len(steps) == 0 {
			t.Fatalf("steps %v (%v)", steps, err)
		}
		if last := steps[len(steps)-1]; last.Name != "recover" || last.Outcome != "deferred" || !strings.Contains(last.Detail, wantStep) {
			t.Errorf("last step %+v, want recover deferred (%s)", last, wantStep)
		}
	}
	settled := func(t *testing.T, id, paymentID string) {
		t.Helper()
		s.expireLease(t, id)
		time.Sleep(100 * time.Millisecond) // the breaker's cooldown
		if n, err := s.saga.Recover(ctx); err != nil || n != 1 {
			t.Fatalf("recovered %d (%v)", n, err)
		}
		o, err := s.store.Get(ctx, id)
		if err != nil || o.Status != domain.StatusFailed || o.Reason != domain.ReasonInterrupted || !o.Compensated || o.PaymentID != paymentID {
			t.Fatalf("order %+v (%v)", o, err)
		}
		if c := s.chargeOf(t, paymentID); c.Status != "refunded" {
			t.Errorf("charge %+v, want refunded", c)
		}
		if r := s.reservationOf(t, id); r != "released" {
			t.Errorf("reservation %s", r)
		}
	}

	t.Run("payment down: left, then settled once it is back", func(t *testing.T) {
		o, paymentID := s.leftCharging(t, true)
		s.pay.Hang.Store(true)
		for range 2 { // a second pass, once the lease ran out again, changes nothing either
			if n, err := s.saga.Recover(ctx); err != nil || n != 1 {
				t.Fatalf("recovered %d (%v)", n, err)
			}
			left(t, o.ID, "could not be asked")
			s.expireLease(t, o.ID)
		}
		if c := s.chargeOf(t, paymentID); c.Status != "captured" {
			t.Errorf("charge %+v", c)
		}
		s.pay.Hang.Store(false)
		settled(t, o.ID, paymentID)
	})
	t.Run("charge pending: left, then settled once captured", func(t *testing.T) {
		o, paymentID := s.leftCharging(t, true)
		s.pay.SetStatus(paymentID, "pending")
		if n, err := s.saga.Recover(ctx); err != nil || n != 1 {
			t.Fatalf("recovered %d (%v)", n, err)
		}
		left(t, o.ID, "pending")
		s.pay.SetStatus(paymentID, "captured")
		settled(t, o.ID, paymentID)
	})
}

// A charge whose answer is lost while the customer waits fails the order at
// once (the reservation released, as before) but its event waits until
// payment can tell whether anything was charged.
func TestLostChargeAnswerEventWaitsForPayment(t *testing.T) {
	s := newStack(t, stackOptions{redis: true, clients: ordertest.ClientOptions{Timeout: 300 * time.Millisecond, BreakerCooldown: 50 * time.Millisecond}})
	ctx := context.Background()
	s.pay.Hang.Store(true)
	resp := s.placeOrder(t, s.customer(t, "dave"), "k-lost", book, 1, ordertest.CardApproved)
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	id := resp.order(t).ID
	o, err := s.store.Get(ctx, id)
	if err != nil || o.Status != domain.StatusFailed || o.Reason != domain.ReasonUnavailable || o.Compensated || !o.ChargeUnknown {
		t.Fatalf("order %+v (%v), want failed, its charge still in doubt", o, err)
	}
	if r := s.reservationOf(t, id); r != "released" {
		t.Errorf("reservation %s", r)
	}
	time.Sleep(300 * time.Millisecond) // the relay runs every 100ms
	for _, m := range s.events(t) {
		if m.Values["order_id"] == id {
			t.Fatalf("an event before the charge is settled: %v", m.Values)
		}
	}

	s.pay.Hang.Store(false)
	s.expireLease(t, id)
	time.Sleep(100 * time.Millisecond) // the breaker's cooldown
	if n, err := s.saga.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("recovered %d (%v)", n, err)
	}
	o, err = s.store.Get(ctx, id)
	if err != nil || o.Status != domain.StatusFailed || !o.Compensated || o.ChargeUnknown || o.PaymentID != "" {
		t.Fatalf("order %+v (%v)", o, err)
	}
	failedPayload(t, s.waitForEvent(t, saga.EventFailed, id, 10*time.Second))
	if n, err := s.saga.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("a settled order was recovered again: %d (%v)", n, err)
	}
}
