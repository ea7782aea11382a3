package system

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// counter reads one sample of a Prometheus counter from a service's /metrics.
func counter(t *testing.T, svc, sample string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(st.Service(svc).OpsURL() + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", svc, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return v
}

func TestBusinessCountersCountAnOrder(t *testing.T) {
	samples := []struct{ svc, sample string }{
		{stack.Order, `orders_finished_total{reason="",status="confirmed"}`},
		{stack.Payment, `payment_charges_total{outcome="captured"}`},
		{stack.Inventory, `inventory_reservations_total{outcome="reserved"}`},
		{stack.Inventory, `inventory_reservations_total{outcome="committed"}`},
	}
	before := make([]float64, len(samples))
	for i, s := range samples {
		before[i] = counter(t, s.svc, s.sample)
	}
	sku := newSKU("metrics")
	putProduct(t, sku, 500, 5)
	res, o := placeOrder(t, customer(t), card(cardApproved), item{SKU: sku, Quantity: 1})
	if res.Status != http.StatusCreated || o.Status != "confirmed" {
		t.Fatalf("POST /v1/orders: %s", res)
	}
	for i, s := range samples {
		if got := counter(t, s.svc, s.sample); got < before[i]+1 {
			t.Errorf("%s on %s went from %v to %v, want one more", s.sample, s.svc, before[i], got)
		}
	}
}
