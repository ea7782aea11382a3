package system

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

func TestDeclinedCardReleasesTheReservation(t *testing.T) {
	sku := newSKU("declined")
	putProduct(t, sku, 999, 5)
	token := mintedCustomer(t)

	res, o := placeOrder(t, token, card(cardDeclined), item{SKU: sku, Quantity: 2})
	if res.Status != http.StatusPaymentRequired || o.Status != "failed" || o.Reason != "card_declined" {
		t.Fatalf("declined card: %s, want 402 failed card_declined", res)
	}
	eventually(t, 10*time.Second, "the reservation to be released", func() error {
		if got := getProduct(t, sku).Available; got != 5 {
			return fmt.Errorf("available = %d, want 5", got)
		}
		return nil
	})
	if n := queryInt(t, stack.Payment, `SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'captured'`, o.ID); n != 0 {
		t.Errorf("%d captured charges for the declined order, want 0", n)
	}
	if n := queryInt(t, stack.Inventory, `SELECT count(*) FROM reservations r JOIN reservation_items i ON i.reservation_id = r.id
		WHERE i.sku = $1 AND r.status IN ('reserved', 'committed')`, sku); n != 0 {
		t.Errorf("%d active or committed reservations of %s, want 0", n, sku)
	}
}

func TestPaymentDown(t *testing.T) {
	sku := newSKU("paydown")
	putProduct(t, sku, 500, 20)
	token := mintedCustomer(t)
	payment := st.Service(stack.Payment)

	payment.Stop()
	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			if err := payment.Start(t.Context()); err != nil {
				t.Fatalf("restarting payment: %v", err)
			}
		}
	}
	defer restart()

	// Enough attempts to trip the breaker (5 consecutive failures by
	// default), then a few more that it should refuse at once.
	var late []time.Duration
	for i := range 10 {
		start := time.Now()
		res, o := placeOrder(t, token, card(cardApproved), item{SKU: sku, Quantity: 1})
		took := time.Since(start)
		if res.Status != http.StatusServiceUnavailable {
			t.Fatalf("order %d with payment down: %s, want 503", i, res)
		}
		if o.ID != "" && o.Status != "failed" {
			t.Errorf("order %d: status %q, want failed", i, o.Status)
		}
		if i >= 7 {
			late = append(late, took)
		}
	}
	for _, d := range late {
		if d > 300*time.Millisecond {
			t.Errorf("answers with the breaker open took %v, want them fast (< 300ms)", late)
			break
		}
	}
	eventually(t, 15*time.Second, "every reservation to be released", func() error {
		if got := getProduct(t, sku).Available; got != 20 {
			return fmt.Errorf("available = %d, want 20", got)
		}
		return nil
	})
	if n := queryInt(t, stack.Inventory, `SELECT count(*) FROM reservations r JOIN reservation_items i ON i.reservation_id = r.id
		WHERE i.sku = $1 AND r.status = 'committed'`, sku); n != 0 {
		t.Errorf("%d committed reservations of %s while payment was down, want 0", n, sku)
	}

	restart()
	// The breaker lets a trial call through after its cooldown.
	eventually(t, 20*time.Second, "orders to succeed once payment is back", func() error {
		res, _ := placeOrder(t, token, card(cardApproved), item{SKU: sku, Quantity: 1})
		if res.Status != http.StatusCreated {
			return fmt.Errorf("%s", res)
		}
		return nil
	})
}
