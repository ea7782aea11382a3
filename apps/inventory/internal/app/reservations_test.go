package app_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestConcurrentReservationsNeverOversell(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "lamp", 4900, 10)
	do(t, s.anon, "GET", s.public+"/v1/products/lamp", nil) // cached with 10 available

	const attempts = 100
	statuses := make([]int, attempts)
	codes := make([]string, attempts)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range attempts {
		wg.Go(func() {
			<-start
			res, err := send(s.order, "POST", s.internal+"/v1/reservations",
				map[string]any{"order_id": newOrderID(), "items": []any{item("lamp", 1)}})
			if err != nil {
				t.Errorf("reservation %d: %v", i, err)
				return
			}
			statuses[i], codes[i] = res.Status, res.errorCode()
		})
	}
	close(start)
	wg.Wait()

	created, refused := 0, 0
	for i, st := range statuses {
		switch {
		case st == http.StatusCreated:
			created++
		case st == http.StatusConflict && codes[i] == "insufficient_stock":
			refused++
		default:
			t.Errorf("reservation %d: %d %s", i, st, codes[i])
		}
	}
	if created != 10 || refused != 90 {
		t.Fatalf("%d reservations created and %d refused, want 10 and 90", created, refused)
	}
	onHand, reserved := s.stock(t, "lamp")
	if onHand != 10 || reserved != 10 {
		t.Fatalf("on_hand %d reserved %d, want 10 and 10", onHand, reserved)
	}
	if n := s.count(t, `SELECT count(*) FROM reservations`); n != 10 {
		t.Fatalf("%d reservations stored, want 10", n)
	}
	if n := s.count(t, `SELECT coalesce(sum(quantity), 0) FROM reservation_items`); n != 10 {
		t.Fatalf("%d units in reservation items, want 10", n)
	}
	// Reservations invalidate the cache, so the catalog shows them.
	if res := do(t, s.anon, "GET", s.public+"/v1/products/lamp", nil); res.Body["available"] != 0.0 {
		t.Fatalf("available after the rush: %s, want 0", res.Raw)
	}
}

func TestMultiItemReservationIsAllOrNothing(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "cup", 300, 5)
	s.putProduct(t, "saucer", 200, 1)

	res := s.reserve(t, newOrderID(), 60, item("cup", 2), item("saucer", 2))
	if res.Status != http.StatusConflict || res.errorCode() != "insufficient_stock" {
		t.Fatalf("got %d %s, want 409 insufficient_stock", res.Status, res.Raw)
	}
	res = s.reserve(t, newOrderID(), 60, item("cup", 2), item("no-such-thing", 1))
	if res.Status != http.StatusNotFound {
		t.Fatalf("unknown sku: got %d %s, want 404", res.Status, res.Raw)
	}
	for _, sku := range []string{"cup", "saucer"} {
		if _, reserved := s.stock(t, sku); reserved != 0 {
			t.Errorf("%s: %d reserved after a refused reservation", sku, reserved)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Fatalf("%d reservations stored by refused requests", n)
	}

	// Both in stock: both reserved, priced in one total.
	res = s.reserve(t, newOrderID(), 60, item("cup", 2), item("saucer", 1), item("cup", 1))
	if res.Status != http.StatusCreated || res.Body["total_cents"] != 3*300.0+200.0 || res.Body["currency"] != "EUR" {
		t.Fatalf("got %d %s, want 201 with total_cents 1100", res.Status, res.Raw)
	}
	if _, reserved := s.stock(t, "cup"); reserved != 3 {
		t.Fatalf("cup: %d reserved, want 3", reserved)
	}
}

func TestReservationLifecycle(t *testing.T) {
	s := startService(t)
	s.putProduct(t, "pen", 150, 10)

	order := newOrderID()
	first := s.reserve(t, order, 300, item("pen", 4))
	if first.Status != http.StatusCreated || first.Body["status"] != "reserved" || first.Body["total_cents"] != 600.0 {
		t.Fatalf("reserve: %d %s", first.Status, first.Raw)
	}
	id := first.Body["id"].(string)

	t.Run("a retry with the same body returns the same reservation", func(t *testing.T) {
		again := s.reserve(t, order, 300, item("pen", 4))
		if again.Status != http.StatusCreated || again.Body["id"] != id || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %s", again.Status, again.Raw)
		}
		if _, reserved := s.stock(t, "pen"); reserved != 4 {
			t.Fatalf("%d reserved after a retry, want 4", reserved)
		}
	})
	t.Run("the same order with another body is refused", func(t *testing.T) {
		other := s.reserve(t, order, 300, item("pen", 5))
		if other.Status != http.StatusConflict || other.errorCode() != "idempotency_key_reused" {
			t.Fatalf("reuse: %d %s", other.Status, other.Raw)
		}
	})
	t.Run("commit is idempotent", func(t *testing.T) {
		for range 2 {
			res := do(t, s.order, "POST", s.internal+"/v1/reservations/"+id+"/commit", nil)
			if res.Status != http.StatusOK || res.Body["status"] != "committed" {
				t.Fatalf("commit: %d %s", res.Status, res.Raw)
			}
		}
		if onHand, reserved := s.stock(t, "pen"); onHand != 6 || reserved != 0 {
			t.Fatalf("after commit: on_hand %d reserved %d, want 6 and 0", onHand, reserved)
		}
	})
	t.Run("release after commit is refused", func(t *testing.T) {
		res := do(t, s.order, "POST", s.internal+"/v1/reservations/"+id+"/release", nil)
		if res.Status != http.StatusConflict || res.errorCode() != "reservation_closed" {
			t.Fatalf("release after commit: %d %s", res.Status, res.Raw)
		}
	})
	t.Run("release is idempotent and commit after it is refused", func(t *testing.T) {
		r := s.reserve(t, newOrderID(), 300, item("pen", 2))
		rid := r.Body["id"].(string)
		for range 2 {
			res := do(t, s.order, "POST", s.internal+"/v1/reservations/"+rid+"/release", nil)
			if res.Status != http.StatusOK || res.Body["status"] != "released" {
				t.Fatalf("release: %d %s", res.Status, res.Raw)
			}
		}
		if onHand, reserved := s.stock(t, "pen"); onHand != 6 || reserved != 0 {
			t.Fatalf("after release: on_hand %d reserved %d, want 6 and 0", onHand, reserved)
		}
		res := do(t, s.order, "POST", s.internal+"/v1/reservations/"+rid+"/commit", nil)
		if res.Status != http.StatusConflict || res.errorCode() != "reservation_closed" {
			t.Fatalf("commit after release: %d %s", res.Status, res.Raw)
		}
	})
	t.Run("unknown reservations are not found", func(t *testing.T) {
		res := do(t, s.order, "POST", s.internal+"/v1/reservations/"+newOrderID()+"/commit", nil)
		if res.Status != http.StatusNotFound {
			t.Fatalf("commit of an unknown reservation: %d %s", res.Status, res.Raw)
		}
	})
	t.Run("stock cannot drop below what is reserved", func(t *testing.T) {
		s.reserve(t, newOrderID(), 300, item("pen", 5))
		res := do(t, s.anon, "PUT", s.public+"/v1/products/pen",
			map[string]any{"name": "Pen", "price_cents": 150, "currency": "EUR", "stock": 4},
			"Authorization", s.adminToken(t))
		if res.Status != http.StatusConflict || res.errorCode() != "stock_below_reserved" {
			t.Fatalf("PUT below reserved: %d %s", res.Status, res.Raw)
		}
	})
}

func TestExpiredReservationsAreReleasedBySweeper(t *testing.T) {
	s := startService(t, sweepEvery(100*time.Millisecond))
	s.putProduct(t, "kettle", 2500, 3)
	res := s.reserve(t, newOrderID(), 1, item("kettle", 2))
	if res.Status != http.StatusCreated {
		t.Fatalf("reserve: %d %s", res.Status, res.Raw)
	}
	id := res.Body["id"].(string)

	deadline := time.Now().Add(10 * time.Second)
	var status string
	for time.Now().Before(deadline) {
		if err := s.db.QueryRow(context.Background(), `SELECT status FROM reservations WHERE id = $1`, id).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "expired" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != "expired" {
		t.Fatalf("status %q 10s after a 1s TTL, want expired", status)
	}
	if _, reserved := s.stock(t, "kettle"); reserved != 0 {
		t.Fatalf("%d reserved after expiry, want 0", reserved)
	}
	commit := do(t, s.order, "POST", s.internal+"/v1/reservations/"+id+"/commit", nil)
	if commit.Status != http.StatusConflict {
		t.Fatalf("commit after expiry: %d %s, want 409", commit.Status, commit.Raw)
	}
	release := do(t, s.order, "POST", s.internal+"/v1/reservations/"+id+"/release", nil)
	if release.Status != http.StatusOK || release.Body["status"] != "expired" {
		t.Fatalf("release after expiry: %d %s, want 200 expired", release.Status, release.Raw)
	}
}

func TestOverdueReservationCannotBeCommittedBeforeTheSweep(t *testing.T) {
	s := startService(t) // the sweeper runs hourly here
	s.putProduct(t, "kettle", 2500, 3)
	res := s.reserve(t, newOrderID(), 1, item("kettle", 2))
	id := res.Body["id"].(string)
	time.Sleep(1100 * time.Millisecond)
	commit := do(t, s.order, "POST", s.internal+"/v1/reservations/"+id+"/commit", nil)
	if commit.Status != http.StatusConflict || commit.errorCode() != "reservation_closed" {
		t.Fatalf("commit after the deadline: %d %s, want 409", commit.Status, commit.Raw)
	}
	if onHand, reserved := s.stock(t, "kettle"); onHand != 3 || reserved != 0 {
		t.Fatalf("on_hand %d reserved %d, want 3 and 0", onHand, reserved)
	}
}
