package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/ordertest"
	"github.com/shopstack/shopstack/apps/order/internal/outbox"
	"github.com/shopstack/shopstack/apps/order/internal/saga"
)

func TestOrderConfirmed(t *testing.T) {
	s := newStack(t, stackOptions{redis: true})
	token := s.customer(t, "alice")

	resp := s.placeOrder(t, token, "k-1", book, 2, ordertest.CardApproved)
	if resp.status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	o := resp.order(t)
	if o.Status != "confirmed" || o.TotalCents != 2500 || o.Currency != "EUR" || o.PaymentID == "" || o.CustomerID != "alice" {
		t.Fatalf("order %+v", o)
	}

	if got := s.inv.OnHand(book); got != stock-2 {
		t.Errorf("on hand %d, want %d (stock committed)", got, stock-2)
	}
	if got := s.inv.CountByStatus(); got["committed"] != 1 || len(got) != 1 {
		t.Errorf("reservations %v, want one committed", got)
	}
	charges := s.pay.Charges()
	if len(charges) != 1 || charges[0].Status != "captured" || charges[0].AmountCents != 2500 || charges[0].ID != o.PaymentID {
		t.Errorf("charges %+v, want one captured charge of 2500", charges)
	}

	ev := s.waitForEvent(t, saga.EventConfirmed, o.ID, 10*time.Second)
	var payload saga.Event
	if err := json.Unmarshal([]byte(ev.Values["payload"].(string)), &payload); err != nil || payload.TotalCents != 2500 || payload.CustomerID != "alice" {
		t.Errorf("payload %s (%v)", ev.Values["payload"], err)
	}

	got := s.call(t, "GET", "/v1/orders/"+o.ID, token, "")
	if got.status != http.StatusOK || got.order(t).Status != "confirmed" {
		t.Fatalf("GET: %d %s", got.status, got.body)
	}
	steps, err := s.store.Steps(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	var journal []string
	for _, st := range steps {
		journal = append(journal, st.Name+":"+st.Outcome)
	}
	want := "create:succeeded reserve:started reserve:succeeded charge:succeeded commit:succeeded"
	if strings.Join(journal, " ") != want {
		t.Errorf("journal %v, want %s", journal, want)
	}
}

func TestCardDeclined(t *testing.T) {
	s := newStack(t, stackOptions{})
	resp := s.placeOrder(t, s.customer(t, "alice"), "k-1", book, 3, ordertest.CardDeclined)
	if resp.status != http.StatusPaymentRequired {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if o := resp.order(t); o.Status != "failed" || o.Reason != "card_declined" {
		t.Fatalf("order %+v", o)
	}
	if got := s.inv.CountByStatus(); got["released"] != 1 || len(got) != 1 {
		t.Errorf("reservations %v, want one released", got)
	}
	if got := s.inv.Available(book); got != stock {
		t.Errorf("available %d, want %d", got, stock)
	}
	if got := s.pay.Charges(); len(got) != 0 {
		t.Errorf("charges %+v, want none", got)
	}
}

func TestInsufficientStock(t *testing.T) {
	s := newStack(t, stackOptions{})
	resp := s.placeOrder(t, s.customer(t, "alice"), "k-1", book, stock+1, ordertest.CardApproved)
	if resp.status != http.StatusConflict {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if o := resp.order(t); o.Status != "failed" || o.Reason != "insufficient_stock" {
		t.Fatalf("order %+v", o)
	}
	if s.pay.Hits() != 0 || len(s.inv.Reservations()) != 0 {
		t.Fatalf("payment called %d times, reservations %v", s.pay.Hits(), s.inv.Reservations())
	}
}

func TestPaymentDown(t *testing.T) {
	t.Run("not answering: calls time out, the breaker opens, nothing stays reserved", func(t *testing.T) {
		s := newStack(t, stackOptions{clients: ordertest.ClientOptions{Timeout: 300 * time.Millisecond, BreakerFailures: 3}})
		s.pay.Hang.Store(true)
		token := s.customer(t, "alice")
		var hitsAfterOpen int64
		for i := range 5 {
			start := time.Now()
			resp := s.placeOrder(t, token, fmt.Sprintf("k-%d", i), book, 1, ordertest.CardApproved)
			took := time.Since(start)
			if resp.status != http.StatusServiceUnavailable {
				t.Fatalf("order %d: status %d: %s", i, resp.status, resp.body)
			}
			if o := resp.order(t); o.Status != "failed" || o.Reason != "dependency_unavailable" {
				t.Fatalf("order %d: %+v", i, o)
			}
			switch {
			case i == 0 && took < 300*time.Millisecond:
				t.Errorf("the first order took %s: it did not wait for the timeout", took)
			case i == 3:
				hitsAfterOpen = s.pay.Hits()
				fallthrough
			case i == 4:
				if took > 250*time.Millisecond {
					t.Errorf("order %d took %s with the breaker open", i, took)
				}
			}
		}
		if s.pay.Hits() != hitsAfterOpen {
			t.Errorf("payment was called with the breaker open")
		}
		if got := s.inv.CountByStatus(); got["released"] != 5 || len(got) != 1 {
			t.Errorf("reservations %v, want all 5 released", got)
		}
		if got := s.inv.Available(book); got != stock {
			t.Errorf("available %d, want %d", got, stock)
		}
		if got := s.pay.Charges(); len(got) != 0 {
			t.Errorf("charges %+v", got)
		}
	})
	t.Run("stopped: fails fast with 503, the reservation is released", func(t *testing.T) {
		s := newStack(t, stackOptions{clients: ordertest.ClientOptions{Timeout: time.Second}})
		s.pay.Stop()
		resp := s.placeOrder(t, s.customer(t, "alice"), "k-1", book, 1, ordertest.CardApproved)
		if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		if got := s.inv.CountByStatus(); got["released"] != 1 || len(got) != 1 {
			t.Errorf("reservations %v, want one released", got)
		}
	})
}

func TestCommitFailsRefunds(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.inv.FailCommit.Store(true)
	resp := s.placeOrder(t, s.customer(t, "alice"), "k-1", lamp, 1, ordertest.CardApproved)
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if o := resp.order(t); o.Status != "failed" || o.Reason != "commit_failed" {
		t.Fatalf("order %+v", o)
	}
	if got := s.pay.CountByStatus(); got["refunded"] != 1 || len(got) != 1 {
		t.Errorf("charges %v, want one refunded", got)
	}
	if got := s.inv.CountByStatus(); got["released"] != 1 || len(got) != 1 {
		t.Errorf("reservations %v, want one released", got)
	}
	if got := s.inv.OnHand(lamp); got != stock {
		t.Errorf("on hand %d", got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice, bob := s.customer(t, "alice"), s.customer(t, "bob")

	t.Run("a retry gets the same order", func(t *testing.T) {
		first := s.placeOrder(t, alice, "same", book, 1, ordertest.CardApproved)
		again := s.placeOrder(t, alice, "same", book, 1, ordertest.CardApproved)
		if first.status != http.StatusCreated || again.status != http.StatusCreated || first.order(t).ID != again.order(t).ID {
			t.Fatalf("first %d %s, again %d %s", first.status, first.body, again.status, again.body)
		}
	})
	t.Run("a failed order is answered the same way again", func(t *testing.T) {
		first := s.placeOrder(t, alice, "declined", book, 1, ordertest.CardDeclined)
		again := s.placeOrder(t, alice, "declined", book, 1, ordertest.CardDeclined)
		if first.status != http.StatusPaymentRequired || again.status != first.status || first.order(t).ID != again.order(t).ID {
			t.Fatalf("first %d, again %d", first.status, again.status)
		}
	})
	t.Run("the same key with a different body is refused", func(t *testing.T) {
		resp := s.placeOrder(t, alice, "same", book, 2, ordertest.CardApproved)
		if resp.status != http.StatusConflict || resp.errorCode(t) != "idempotency_key_reused" {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
	})
	t.Run("another customer's key is their own", func(t *testing.T) {
		resp := s.placeOrder(t, bob, "same", book, 1, ordertest.CardApproved)
		if resp.status != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
	})
	t.Run("ten at once make one order, one reservation, one charge", func(t *testing.T) {
		reservations, charges := len(s.inv.Reservations()), len(s.pay.Charges())
		var wg sync.WaitGroup
		answers := make([]response, 10)
		for i := range answers {
			wg.Go(func() { answers[i] = s.placeOrder(t, alice, "burst", lamp, 1, ordertest.CardApproved) })
		}
		wg.Wait()
		for i, a := range answers {
			if a.status != http.StatusCreated || a.order(t).ID != answers[0].order(t).ID {
				t.Errorf("answer %d: %d %s", i, a.status, a.body)
			}
		}
		if got := len(s.inv.Reservations()) - reservations; got != 1 {
			t.Errorf("%d reservations", got)
		}
		if got := len(s.pay.Charges()) - charges; got != 1 {
			t.Errorf("%d charges", got)
		}
	})
}

func TestVisibility(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice, bob := s.customer(t, "alice"), s.customer(t, "bob")
	a := s.placeOrder(t, alice, "a", book, 1, ordertest.CardApproved).order(t)
	b := s.placeOrder(t, bob, "b", book, 1, ordertest.CardApproved).order(t)

	list := func(token string) []string {
		resp := s.call(t, "GET", "/v1/orders", token, "")
		if resp.status != http.StatusOK {
			t.Fatalf("list: %d %s", resp.status, resp.body)
		}
		var body struct {
			Items []orderBody `json:"items"`
		}
		if err := json.Unmarshal(resp.body, &body); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range body.Items {
			ids = append(ids, o.ID)
		}
		return ids
	}
	if got := list(alice); len(got) != 1 || got[0] != a.ID {
		t.Errorf("alice sees %v", got)
	}
	if got := list(s.admin(t)); len(got) != 2 {
		t.Errorf("admin sees %v", got)
	}
	if resp := s.call(t, "GET", "/v1/orders/"+b.ID, alice, ""); resp.status != http.StatusNotFound {
		t.Errorf("alice reading bob's order: %d", resp.status)
	}
	if resp := s.call(t, "GET", "/v1/orders/"+b.ID, s.admin(t), ""); resp.status != http.StatusOK {
		t.Errorf("admin reading bob's order: %d", resp.status)
	}
	for _, id := range []string{"nope", "00000000-0000-4000-8000-000000000000", "'%20OR%201=1--"} {
		if resp := s.call(t, "GET", "/v1/orders/"+id, alice, ""); resp.status != http.StatusNotFound {
			t.Errorf("GET %s: %d", id, resp.status)
		}
	}
	if resp := s.call(t, "GET", "/v1/orders", "", ""); resp.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.status)
	}
}

func TestBadRequestsStoreNothing(t *testing.T) {
	s := newStack(t, stackOptions{})
	token := s.customer(t, "alice")
	card := map[string]any{"number": ordertest.CardApproved, "exp_month": 12, "exp_year": time.Now().Year() + 2, "cvc": "123"}
	item := func(sku string, q int) []map[string]any { return []map[string]any{{"sku": sku, "quantity": q}} }
	tests := map[string]struct {
		body   string
		header []string
		want   int
	}{
		"malformed JSON":           {body: `{"items": [`, want: 400},
		"unknown field":            {body: jsonBody(map[string]any{"items": item(book, 1), "card": card, "coupon": "FREE"}), want: 400},
		"two JSON values":          {body: orderJSON(book, 1, ordertest.CardApproved) + "{}", want: 400},
		"oversized body":           {body: `{"items":[` + strings.Repeat(`{"sku":"A","quantity":1},`, bodyLimit/20) + `{}]}`, want: 413},
		"SQL in sku":               {body: orderJSON("x'; DROP TABLE orders;--", 1, ordertest.CardApproved), want: 400},
		"sku with spaces":          {body: orderJSON("BOOK 1", 1, ordertest.CardApproved), want: 400},
		"zero quantity":            {body: orderJSON(book, 0, ordertest.CardApproved), want: 400},
		"negative quantity":        {body: orderJSON(book, -1, ordertest.CardApproved), want: 400},
		"quantity as string":       {body: `{"items":[{"sku":"BOOK-1","quantity":"1"}],"card":{}}`, want: 400},
		"no items":                 {body: jsonBody(map[string]any{"items": []any{}, "card": card}), want: 400},
		"no card":                  {body: jsonBody(map[string]any{"items": item(book, 1)}), want: 400},
		"card number not digits":   {body: orderJSON(book, 1, "4242-4242-4242-4242"), want: 400},
		"duplicate sku":            {body: jsonBody(map[string]any{"items": append(item(book, 1), item(book, 2)...), "card": card}), want: 400},
		"no idempotency key":       {body: orderJSON(book, 1, ordertest.CardApproved), header: []string{"Idempotency-Key", ""}, want: 400},
		"idempotency key too long": {body: orderJSON(book, 1, ordertest.CardApproved), header: []string{"Idempotency-Key", strings.Repeat("k", 200)}, want: 400},
		"not JSON":                 {body: orderJSON(book, 1, ordertest.CardApproved), header: []string{"Content-Type", "text/plain"}, want: 415},
		"no token":                 {body: orderJSON(book, 1, ordertest.CardApproved), header: []string{"Authorization", ""}, want: 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			header := append([]string{"Idempotency-Key", "key-" + strings.ReplaceAll(name, " ", "-")}, tc.header...)
			resp := s.call(t, "POST", "/v1/orders", token, tc.body, header...)
			if resp.status != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.want, resp.body)
			}
			resp.errorCode(t)
		})
	}
	if n := s.countOrders(t); n != 0 {
		t.Errorf("%d orders stored", n)
	}
	if s.inv.Hits() != 0 || s.pay.Hits() != 0 {
		t.Errorf("downstream called: inventory %d, payment %d", s.inv.Hits(), s.pay.Hits())
	}
}

func TestOutboxWaitsForRedis(t *testing.T) {
	var proxy *ordertest.Proxy
	s := newStack(t, stackOptions{redis: true, redisAddr: func(t *testing.T, server string) string {
		proxy = ordertest.StartProxy(t, server)
		return proxy.Addr
	}})
	proxy.Down()

	resp := s.placeOrder(t, s.customer(t, "alice"), "k-1", book, 1, ordertest.CardApproved)
	if resp.status != http.StatusCreated {
		t.Fatalf("with Redis down the order must still go through: %d %s", resp.status, resp.body)
	}
	o := resp.order(t)
	time.Sleep(300 * time.Millisecond) // a few relay attempts fail
	if n, err := outbox.Pending(context.Background(), s.pool); err != nil || n != 1 {
		t.Fatalf("pending events %d (%v), want 1", n, err)
	}

	proxy.Up()
	s.waitForEvent(t, saga.EventConfirmed, o.ID, 15*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := outbox.Pending(context.Background(), s.pool)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d pending (%v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A reservation whose answer is lost is found again with the same
// idempotency key and released.
func TestLostReserveAnswerIsReleased(t *testing.T) {
	s := newStack(t, stackOptions{clients: ordertest.ClientOptions{Timeout: 300 * time.Millisecond}})
	s.inv.LoseReserveAnswers.Store(1)
	resp := s.placeOrder(t, s.customer(t, "alice"), "k-1", book, 4, ordertest.CardApproved)
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if got := s.inv.CountByStatus(); got["released"] != 1 || len(got) != 1 {
		t.Errorf("reservations %v, want the one made released", got)
	}
	if got := s.inv.Available(book); got != stock {
		t.Errorf("available %d", got)
	}
	if s.pay.Hits() != 0 {
		t.Error("payment was called")
	}
	o, err := s.store.Get(context.Background(), resp.order(t).ID)
	if err != nil || !o.Compensated || o.ReserveUnknown {
		t.Errorf("order %+v (%v)", o, err)
	}
}
