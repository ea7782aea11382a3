package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	"github.com/shopstack/shopstack/apps/payment/internal/processor"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

func TestChargeOutcomes(t *testing.T) {
	r := newReplica(t, newDB(t), nil)
	payments := r.URL + "/v1/payments"

	t.Run("approved", func(t *testing.T) {
		order := domain.NewID()
		a := post(t, payments, "approve-1", chargeBody(order, 1999, processor.CardApprove))
		if a.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
		p := a.payment(t)
		if p.Status != "captured" || p.OrderID != order || p.AmountCents != 1999 || p.Currency != "EUR" || p.CardLast4 != "4242" || !domain.ValidID(p.ID) {
			t.Errorf("payment %+v", p)
		}
		if strings.Contains(string(a.Body), processor.CardApprove) {
			t.Error("the answer contains the card number")
		}
		if g := get(t, payments+"/"+p.ID); g.Status != http.StatusOK || g.payment(t).ID != p.ID {
			t.Errorf("GET: %d %s", g.Status, g.Body)
		}
	})

	t.Run("another Luhn-valid card is approved", func(t *testing.T) {
		if a := post(t, payments, "approve-2", chargeBody(domain.NewID(), 500, "5555555555554444")); a.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
	})

	t.Run("declined", func(t *testing.T) {
		a := post(t, payments, "decline-1", chargeBody(domain.NewID(), 1999, processor.CardDecline))
		if a.Status != http.StatusPaymentRequired || a.errorBody(t).Code != "card_declined" {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
		if again := post(t, payments, "decline-1", chargeBody(domain.NewID(), 1999, processor.CardDecline)); again.Status != http.StatusConflict {
			t.Errorf("same key, new order: %d %s", again.Status, again.Body)
		}
	})

	t.Run("processor timeout is recorded failed, answered 504, never charged twice", func(t *testing.T) {
		body := chargeBody(domain.NewID(), 1999, processor.CardTimeout)
		calls := r.Processor.calls.Load()
		start := time.Now()
		a := post(t, payments, "timeout-1", body)
		if a.Status != http.StatusGatewayTimeout || a.errorBody(t).Code != "timeout" {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
		if took := time.Since(start); took < testProcessorTimeout || took > testProcessorTimeout+2*time.Second {
			t.Errorf("answered after %s, want just over the processor timeout %s", took, testProcessorTimeout)
		}
		if n := count(t, r.Pool, `SELECT count(*) FROM payments WHERE idempotency_key = 'timeout-1' AND status = 'failed'`); n != 1 {
			t.Errorf("%d failed rows for the key, want 1", n)
		}
		retry := post(t, payments, "timeout-1", body)
		if retry.Status != http.StatusGatewayTimeout {
			t.Errorf("retry: %d %s", retry.Status, retry.Body)
		}
		if got := r.Processor.calls.Load() - calls; got != 1 {
			t.Errorf("the processor saw %d charges for one key, want 1", got)
		}
		if n := count(t, r.Pool, `SELECT count(*) FROM payments WHERE status IN ('captured', 'refunded') AND idempotency_key = 'timeout-1'`); n != 0 {
			t.Error("a timed-out charge is captured")
		}
	})

	t.Run("Luhn-invalid is 422 and stores nothing", func(t *testing.T) {
		a := post(t, payments, "luhn-1", chargeBody(domain.NewID(), 1999, "4242424242424241"))
		if a.Status != http.StatusUnprocessableEntity || a.errorBody(t).Code != "invalid_card_number" {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
		if n := count(t, r.Pool, `SELECT count(*) FROM payments WHERE idempotency_key = 'luhn-1'`); n != 0 {
			t.Errorf("%d rows stored", n)
		}
	})

	t.Run("expired card is 422", func(t *testing.T) {
		body := `{"order_id":"` + domain.NewID() + `","amount_cents":100,"currency":"EUR","card":{"number":"4242424242424242","exp_month":1,"exp_year":2020,"cvc":"123"}}`
		a := post(t, payments, "expired-1", body)
		if a.Status != http.StatusUnprocessableEntity || a.errorBody(t).Code != "card_expired" {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
	})

	t.Run("unknown payment is 404", func(t *testing.T) {
		for _, id := range []string{domain.NewID(), "not-a-uuid"} {
			if g := get(t, payments+"/"+id); g.Status != http.StatusNotFound || g.errorBody(t).Code != "not_found" {
				t.Errorf("%s: %d %s", id, g.Status, g.Body)
			}
		}
	})
}

func TestConcurrentRetriesChargeOnce(t *testing.T) {
	cfg := newDB(t)
	replicas := []*replica{newReplica(t, cfg, nil), newReplica(t, cfg, nil), newReplica(t, cfg, nil)}
	body := chargeBody(domain.NewID(), 4200, processor.CardApprove)

	const requests = 20
	answers := make([]answer, requests)
	errs := make([]error, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = send(client, http.MethodPost, replicas[i%len(replicas)].URL+"/v1/payments", "order-42", body)
		})
	}
	close(start)
	wg.Wait()

	ids := map[string]int{}
	for i, a := range answers {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if a.Status != http.StatusCreated {
			t.Fatalf("request %d: %d %s", i, a.Status, a.Body)
		}
		ids[a.payment(t).ID]++
	}
	if len(ids) != 1 {
		t.Errorf("the answers name %d payments, want 1: %v", len(ids), ids)
	}
	if n := count(t, replicas[0].Pool, `SELECT count(*) FROM payments`); n != 1 {
		t.Errorf("%d payments rows, want 1", n)
	}
	calls := int32(0)
	for _, r := range replicas {
		calls += r.Processor.calls.Load()
	}
	if calls != 1 {
		t.Errorf("the processor was asked %d times, want 1", calls)
	}
}

func TestSameKeyDifferentBody(t *testing.T) {
	r := newReplica(t, newDB(t), nil)
	order := domain.NewID()
	first := post(t, r.URL+"/v1/payments", "k-1", chargeBody(order, 100, processor.CardApprove))
	if first.Status != http.StatusCreated {
		t.Fatalf("%d %s", first.Status, first.Body)
	}
	for name, body := range map[string]string{
		"other amount": chargeBody(order, 101, processor.CardApprove),
		"other card":   chargeBody(order, 100, "5555555555554444"),
	} {
		t.Run(name, func(t *testing.T) {
			a := post(t, r.URL+"/v1/payments", "k-1", body)
			if a.Status != http.StatusConflict || a.errorBody(t).Code != "idempotency_key_reused" {
				t.Fatalf("%d %s", a.Status, a.Body)
			}
		})
	}
	t.Run("same body gets the first answer", func(t *testing.T) {
		a := post(t, r.URL+"/v1/payments", "k-1", chargeBody(order, 100, processor.CardApprove))
		if a.Status != http.StatusCreated || a.payment(t) != first.payment(t) {
			t.Fatalf("%d %s, first was %s", a.Status, a.Body, first.Body)
		}
	})
	if n := count(t, r.Pool, `SELECT count(*) FROM payments`); n != 1 {
		t.Errorf("%d rows", n)
	}
}

func TestCardIsStoredSealed(t *testing.T) {
	var out testenv.SyncBuffer
	r := newReplica(t, newDB(t), &out)
	const number = "4000056655665556" // Luhn-valid, approved
	a := post(t, r.URL+"/v1/payments", "sealed-1", chargeBody(domain.NewID(), 100, number))
	if a.Status != http.StatusCreated {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	id := a.payment(t).ID
	ctx := testContext(t)

	var sealed []byte
	var row string
	if err := r.Pool.QueryRow(ctx, `SELECT card_sealed, p::text FROM payments p WHERE id = $1`, id).Scan(&sealed, &row); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), number) || strings.Contains(row, number) {
		t.Fatal("the card number is in the database in the clear")
	}
	if !strings.Contains(row, "5556") {
		t.Error("card_last4 is not stored")
	}
	plain, err := testKeyring(t).Open(sealed, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	var card struct {
		Number string `json:"number"`
		CVC    string `json:"cvc"`
	}
	if err := json.Unmarshal(plain, &card); err != nil || card.Number != number {
		t.Fatalf("decrypted %q (%v)", plain, err)
	}
	if card.CVC != "" || strings.Contains(string(plain), "cvc") {
		t.Error("the CVC is stored")
	}
	if strings.Contains(out.String(), number) {
		t.Error("the card number is in the logs")
	}
	if !strings.Contains(out.String(), `"route":"/v1/payments"`) {
		t.Errorf("no JSON access log:\n%s", out.String())
	}
}

func TestRefund(t *testing.T) {
	r := newReplica(t, newDB(t), nil)
	bodies := map[string]string{}
	charge := func(t *testing.T, key, card string, amount int64) string {
		t.Helper()
		bodies[key] = chargeBody(domain.NewID(), amount, card)
		a := post(t, r.URL+"/v1/payments", key, bodies[key])
		if a.Status != http.StatusCreated && a.Status != http.StatusPaymentRequired {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
		var p struct{ ID string }
		_ = json.Unmarshal(a.Body, &p)
		return p.ID
	}
	refund := func(t *testing.T, id, key, body string) answer {
		t.Helper()
		return post(t, r.URL+"/v1/payments/"+id+"/refund", key, body)
	}

	t.Run("twice with the same key refunds once", func(t *testing.T) {
		id := charge(t, "r-charge-1", processor.CardApprove, 1000)
		first := refund(t, id, "refund-1", "")
		second := refund(t, id, "refund-1", "")
		for _, a := range []answer{first, second} {
			if a.Status != http.StatusOK {
				t.Fatalf("%d %s", a.Status, a.Body)
			}
			if p := a.payment(t); p.Status != "refunded" || p.RefundedCents != 1000 || p.ID != id {
				t.Errorf("payment %+v", p)
			}
		}
		// A retry of the charge still gets its first answer.
		if a := post(t, r.URL+"/v1/payments", "r-charge-1", bodies["r-charge-1"]); a.Status != http.StatusCreated || a.payment(t).Status != "captured" {
			t.Errorf("charge retry after the refund: %d %s", a.Status, a.Body)
		}
		if g := get(t, r.URL+"/v1/payments/"+id); g.payment(t).Status != "refunded" {
			t.Errorf("GET after the refund: %s", g.Body)
		}
		if n := count(t, r.Pool, `SELECT count(*) FROM refunds WHERE payment_id = $1`, id); n != 1 {
			t.Errorf("%d refunds, want 1", n)
		}
		if a := refund(t, id, "refund-2", ""); a.Status != http.StatusConflict || a.errorBody(t).Code != "already_refunded" {
			t.Errorf("refund after a full refund: %d %s", a.Status, a.Body)
		}
	})

	t.Run("partial refunds up to the captured amount", func(t *testing.T) {
		id := charge(t, "r-charge-2", processor.CardApprove, 1000)
		if a := refund(t, id, "p-1", `{"amount_cents":600}`); a.Status != http.StatusOK || a.payment(t).RefundedCents != 600 {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
		a := refund(t, id, "p-2", `{"amount_cents":500}`)
		if a.Status != http.StatusUnprocessableEntity || a.errorBody(t).Code != "refund_exceeds_charge" {
			t.Fatalf("over-refund: %d %s", a.Status, a.Body)
		}
		if a := refund(t, id, "p-1", `{"amount_cents":400}`); a.Status != http.StatusConflict || a.errorBody(t).Code != "idempotency_key_reused" {
			t.Errorf("same key, other amount: %d %s", a.Status, a.Body)
		}
		if a := refund(t, id, "p-3", `{"amount_cents":400}`); a.Status != http.StatusOK || a.payment(t).RefundedCents != 1000 {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
		if n := count(t, r.Pool, `SELECT refunded_cents FROM payments WHERE id = $1`, id); n != 1000 {
			t.Errorf("refunded %d", n)
		}
	})

	t.Run("a declined payment cannot be refunded", func(t *testing.T) {
		var id string
		_ = r.Pool.QueryRow(testContext(t), `SELECT id::text FROM payments WHERE status = 'declined' LIMIT 1`).Scan(&id)
		if id == "" {
			charge(t, "r-decline", processor.CardDecline, 100)
			_ = r.Pool.QueryRow(testContext(t), `SELECT id::text FROM payments WHERE idempotency_key = 'r-decline'`).Scan(&id)
		}
		if a := refund(t, id, "d-1", ""); a.Status != http.StatusConflict || a.errorBody(t).Code != "not_refundable" {
			t.Errorf("%d %s", a.Status, a.Body)
		}
	})

	t.Run("unknown payment and missing key", func(t *testing.T) {
		if a := refund(t, domain.NewID(), "u-1", ""); a.Status != http.StatusNotFound {
			t.Errorf("%d %s", a.Status, a.Body)
		}
		if a := refund(t, domain.NewID(), "", ""); a.Status != http.StatusBadRequest {
			t.Errorf("%d %s", a.Status, a.Body)
		}
	})
}

func TestBadRequestsStoreNothing(t *testing.T) {
	r := newReplica(t, newDB(t), nil)
	valid := chargeBody(domain.NewID(), 100, processor.CardApprove)
	tests := map[string]struct {
		key, body, contentType string
		status                 int
		field                  string
	}{
		"no Idempotency-Key":   {key: "", body: valid, status: 400, field: "Idempotency-Key"},
		"malformed JSON":       {key: "b-1", body: `{"order_id":`, status: 400},
		"unknown field":        {key: "b-2", body: strings.Replace(valid, `"currency"`, `"coupon":"x","currency"`, 1), status: 400, field: "coupon"},
		"two JSON values":      {key: "b-3", body: valid + valid, status: 400},
		"number as string":     {key: "b-4", body: strings.Replace(valid, `"amount_cents":100`, `"amount_cents":"100"`, 1), status: 400, field: "amount_cents"},
		"oversized":            {key: "b-5", body: `{"order_id":"` + strings.Repeat("a", 70<<10) + `"}`, status: 413},
		"not JSON":             {key: "b-6", body: valid, contentType: "text/plain", status: 415},
		"SQL in order_id":      {key: "b-7", body: strings.Replace(valid, `"order_id":"`, `"order_id":"'; DROP TABLE payments; --`, 1), status: 400, field: "order_id"},
		"SQL in the key":       {key: "b-8';DROP TABLE payments;--", body: `{`, status: 400},
		"negative amount":      {key: "b-9", body: strings.Replace(valid, `"amount_cents":100`, `"amount_cents":-5`, 1), status: 400, field: "amount_cents"},
		"fractional amount":    {key: "b-10", body: strings.Replace(valid, `"amount_cents":100`, `"amount_cents":1.5`, 1), status: 400, field: "amount_cents"},
		"missing card":         {key: "b-11", body: `{"order_id":"` + domain.NewID() + `","amount_cents":100,"currency":"EUR"}`, status: 400, field: "card.number"},
		"space in key":         {key: "b 15", body: valid, status: 400, field: "Idempotency-Key"},
		"lowercase currency":   {key: "b-12", body: strings.Replace(valid, `"EUR"`, `"eur"`, 1), status: 400, field: "currency"},
		"empty body":           {key: "b-13", body: "", status: 415},
		"refund on a bad path": {key: "b-14", body: `{}`, status: 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := r.URL + "/v1/payments"
			if name == "refund on a bad path" {
				url += "/'%3B%20DROP%20TABLE%20payments%3B--/refund"
			}
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
			ct := tc.contentType
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			if tc.key != "" {
				req.Header["Idempotency-Key"] = []string{tc.key}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code, Message, Field string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || e.Error.Message == "" || (tc.field != "" && e.Error.Field != tc.field) {
				t.Errorf("got %d %+v, want %d on field %q", resp.StatusCode, e.Error, tc.status, tc.field)
			}
		})
	}
	if n := count(t, r.Pool, `SELECT count(*) FROM payments`); n != 0 {
		t.Errorf("%d payments stored", n)
	}
	if n := count(t, r.Pool, `SELECT count(*) FROM information_schema.tables WHERE table_name = 'payments'`); n != 1 {
		t.Error("the payments table is gone")
	}
}

func TestConcurrentRetriesOfATimeout(t *testing.T) {
	cfg := newDB(t)
	replicas := []*replica{newReplica(t, cfg, nil), newReplica(t, cfg, nil)}
	body := chargeBody(domain.NewID(), 700, processor.CardTimeout)
	const requests = 6
	answers := make([]answer, requests)
	errs := make([]error, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			answers[i], errs[i] = send(client, http.MethodPost, replicas[i%2].URL+"/v1/payments", "slow-1", body)
		})
	}
	wg.Wait()
	for i, a := range answers {
		if errs[i] != nil || a.Status != http.StatusGatewayTimeout {
			t.Errorf("request %d: %v %d %s", i, errs[i], a.Status, a.Body)
		}
	}
	if calls := replicas[0].Processor.calls.Load() + replicas[1].Processor.calls.Load(); calls != 1 {
		t.Errorf("the processor was asked %d times, want 1", calls)
	}
	if n := count(t, replicas[0].Pool, `SELECT count(*) FROM payments WHERE status = 'failed'`); n != 1 {
		t.Errorf("%d failed payments, want 1", n)
	}
}
