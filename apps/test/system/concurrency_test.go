package system

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

func TestHundredBuyersTenUnits(t *testing.T) {
	const buyers, stock = 100, 10
	sku := newSKU("rush")
	putProduct(t, sku, 2000, stock)
	tokens := make([]string, buyers)
	for i := range tokens {
		tokens[i] = mintedCustomer(t)
	}

	// A watcher reads the stock while the buyers run: it must never go
	// below zero.
	var lowest atomic.Int64
	lowest.Store(stock)
	watchCtx, stopWatch := context.WithCancel(t.Context())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for i := 0; i < 2000 && watchCtx.Err() == nil; i++ {
			res, err := send(watchCtx, request{Method: "GET", URL: inventoryURL() + "/v1/products/" + sku})
			if err == nil && res.Status == http.StatusOK {
				var p product
				if jsonErr := jsonUnmarshal(res.Body, &p); jsonErr == nil && int64(p.Available) < lowest.Load() {
					lowest.Store(int64(p.Available))
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	statuses := make([]int, buyers)
	orders := make([]order, buyers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range buyers {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			req := orderRequest(tokens[i], newUUID(), card(cardApproved), item{SKU: sku, Quantity: 1})
			res, err := send(ctx, req)
			if err != nil {
				t.Errorf("buyer %d: %v", i, err)
				return
			}
			statuses[i] = res.Status
			_ = jsonUnmarshal(res.Body, &orders[i])
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	stopWatch()
	<-watched
	t.Logf("%d buyers answered in %v", buyers, time.Since(began).Round(time.Millisecond))

	counts := map[int]int{}
	var confirmed []order
	for i, s := range statuses {
		counts[s]++
		if s == http.StatusCreated {
			if orders[i].Status != "confirmed" {
				t.Errorf("buyer %d: 201 with status %q", i, orders[i].Status)
			}
			confirmed = append(confirmed, orders[i])
		}
	}
	if counts[http.StatusCreated] != stock || counts[http.StatusConflict] != buyers-stock {
		t.Fatalf("answers by status = %v, want %d × 201 and %d × 409", counts, stock, buyers-stock)
	}
	if got := getProduct(t, sku).Available; got != 0 {
		t.Errorf("available at the end = %d, want 0", got)
	}
	if n := queryInt(t, stack.Inventory, `SELECT on_hand + reserved FROM products WHERE sku = $1`, sku); n != 0 {
		t.Errorf("on_hand + reserved = %d, want 0", n)
	}
	if l := lowest.Load(); l < 0 {
		t.Errorf("the stock was seen at %d", l)
	}
	var ids []string
	for _, o := range confirmed {
		ids = append(ids, o.ID)
	}
	if n := queryInt(t, stack.Payment, `SELECT count(*) FROM payments WHERE order_id = ANY($1::uuid[]) AND status = 'captured'`, ids); n != stock {
		t.Errorf("%d captured payments for the %d confirmed orders", n, stock)
	}
}

func TestConcurrentChargesOneIdempotencyKey(t *testing.T) {
	const callers = 20
	key := newUUID()
	body := map[string]any{"order_id": newUUID(), "amount_cents": 4321, "currency": "EUR", "card": card(cardApproved)}
	client := paymentClient()
	url := st.Service(stack.Payment).InternalURL() + "/v1/payments"

	answers := make([]response, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			res, err := send(ctx, request{Method: "POST", URL: url, Client: client, Body: body, Header: map[string]string{"Idempotency-Key": key}})
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			answers[i] = res
		})
	}
	close(start)
	wg.Wait()

	ids := map[string]int{}
	for i, res := range answers {
		var p payment
		if res.Status != http.StatusCreated || jsonUnmarshal(res.Body, &p) != nil || p.Status != "captured" {
			t.Errorf("caller %d: %s, want 201 captured", i, res)
			continue
		}
		ids[p.ID]++
	}
	if len(ids) != 1 {
		t.Errorf("answers named payments %v, want one", ids)
	}
	if n := queryInt(t, stack.Payment, `SELECT count(*) FROM payments WHERE idempotency_key = $1`, key); n != 1 {
		t.Errorf("%d payment rows for the key, want 1", n)
	}
}
