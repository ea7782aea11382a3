package http_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	paymenthttp "github.com/shopstack/shopstack/apps/payment/internal/http"
	"github.com/shopstack/shopstack/apps/payment/internal/processor"
)

// lookup asks for an order's payments.
func lookup(t *testing.T, base, query string) answer {
	t.Helper()
	return get(t, base+"/v1/payments?"+query)
}

func (a answer) items(t *testing.T) []paymenthttp.PaymentJSON {
	t.Helper()
	var out struct {
		Items []paymenthttp.PaymentJSON `json:"items"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil || out.Items == nil {
		t.Fatalf("not a list (%v): %s", err, a.Body)
	}
	return out.Items
}

func TestPaymentsByOrder(t *testing.T) {
	r := newReplica(t, newDB(t), nil)
	payments := r.URL + "/v1/payments"

	t.Run("unknown order: an empty list", func(t *testing.T) {
		a := lookup(t, r.URL, "order_id="+domain.NewID())
		if a.Status != http.StatusOK {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
		if got := a.items(t); len(got) != 0 {
			t.Errorf("items %+v", got)
		}
		if !strings.Contains(string(a.Body), `"items":[]`) {
			t.Errorf("body %s, want an empty JSON list", a.Body)
		}
	})

	t.Run("a captured charge, then refunded", func(t *testing.T) {
		order := domain.NewID()
		c := post(t, payments, "lk-1", chargeBody(order, 1200, processor.CardApprove)).payment(t)
		post(t, payments, "lk-other", chargeBody(domain.NewID(), 300, processor.CardApprove)) // another order's
		got := lookup(t, r.URL, "order_id="+order).items(t)
		if len(got) != 1 || got[0].ID != c.ID || got[0].Status != "captured" || got[0].OrderID != order || got[0].AmountCents != 1200 || got[0].CardLast4 != "4242" {
			t.Fatalf("items %+v", got)
		}
		if a := post(t, payments+"/"+c.ID+"/refund", "lk-refund-1", ""); a.Status != http.StatusOK {
			t.Fatalf("refund: %d %s", a.Status, a.Body)
		}
		got = lookup(t, r.URL, "order_id="+strings.ToUpper(order)).items(t)
		if len(got) != 1 || got[0].Status != "refunded" || got[0].RefundedCents != 1200 {
			t.Errorf("after the refund: %+v", got)
		}
	})

	t.Run("every charge of the order, newest first, whatever its outcome", func(t *testing.T) {
		order := domain.NewID()
		post(t, payments, "lk-2a", chargeBody(order, 100, processor.CardDecline))
		post(t, payments, "lk-2b", chargeBody(order, 100, processor.CardTimeout))
		ok := post(t, payments, "lk-2c", chargeBody(order, 100, processor.CardApprove)).payment(t)
		got := lookup(t, r.URL, url.Values{"order_id": {order}}.Encode()).items(t)
		var statuses []string
		for _, p := range got {
			statuses = append(statuses, p.Status)
		}
		if strings.Join(statuses, ",") != "captured,failed,declined" || got[0].ID != ok.ID {
			t.Errorf("statuses %v, want captured,failed,declined", statuses)
		}
	})

	t.Run("a charge left pending by a stopped replica is failed once stale", func(t *testing.T) {
		order, fresh, stale := domain.NewID(), domain.NewID(), domain.NewID()
		for _, row := range []struct {
			id, key, age string
		}{{stale, "lk-stale", "1 hour"}, {fresh, "lk-fresh", "0 seconds"}} {
			if _, err := r.Pool.Exec(testContext(t), `INSERT INTO payments
				(id, idempotency_key, request_hash, order_id, amount_cents, currency, card_last4, card_sealed, status, created_at, updated_at)
				VALUES ($1, $2, '\x00', $3, 500, 'EUR', '4242', '\x00', 'pending', now() - $4::interval, now() - $4::interval)`,
				row.id, row.key, order, row.age); err != nil {
				t.Fatal(err)
			}
		}
		got := lookup(t, r.URL, "order_id="+order).items(t)
		if len(got) != 2 || got[0].ID != fresh || got[0].Status != "pending" || got[1].ID != stale || got[1].Status != "failed" {
			t.Fatalf("items %+v, want the fresh one pending and the stale one failed", got)
		}
		if n := count(t, r.Pool, `SELECT count(*) FROM payments WHERE id = $1 AND status = 'failed'`, stale); n != 1 {
			t.Error("the stale charge is not recorded failed")
		}
	})

	t.Run("a bad or missing order_id is 400 naming the field", func(t *testing.T) {
		for _, q := range []string{"", "order_id=", "order_id=not-a-uuid", "order_id=" + domain.NewID() + "&order_id=" + domain.NewID()} {
			a := lookup(t, r.URL, q)
			if a.Status != http.StatusBadRequest {
				t.Errorf("%q: %d %s", q, a.Status, a.Body)
				continue
			}
			if e := a.errorBody(t); e.Field != "order_id" || e.Code != "invalid_request" {
				t.Errorf("%q: %+v", q, e)
			}
		}
		a := lookup(t, r.URL, "order_id="+domain.NewID()+"&status=captured")
		if a.Status != http.StatusBadRequest || a.errorBody(t).Field != "status" {
			t.Errorf("unknown parameter: %d %s", a.Status, a.Body)
		}
	})
}
