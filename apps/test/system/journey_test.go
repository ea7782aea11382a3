package system

import (
	"net/http"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// paymentClient calls payment's internal port as order does, with order's
// certificate.
func paymentClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: st.Service(stack.Order).ClientTLS(st.CA), MaxIdleConnsPerHost: 32,
	}}
}

type payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	CardLast4   string `json:"card_last4"`
}

func TestJourney(t *testing.T) {
	sku := newSKU("journey")
	putProduct(t, sku, 1250, 7)

	token := customer(t)

	res := do(t, request{Method: "GET", URL: inventoryURL() + "/v1/products"})
	if res.Status != http.StatusOK {
		t.Fatalf("browsing the catalog: %s", res)
	}
	var catalog struct{ Items []product }
	res.decode(t, &catalog)
	var found *product
	for i := range catalog.Items {
		if catalog.Items[i].SKU == sku {
			found = &catalog.Items[i]
		}
	}
	if found == nil || found.Available != 7 || found.PriceCents != 1250 {
		t.Fatalf("catalog entry for %s = %+v, want 7 available at 1250", sku, found)
	}

	res, o := placeOrder(t, token, card(cardApproved), item{SKU: sku, Quantity: 3})
	if res.Status != http.StatusCreated || o.Status != "confirmed" {
		t.Fatalf("POST /v1/orders: %s", res)
	}
	if o.TotalCents != 3*1250 || o.Currency != "EUR" || o.PaymentID == "" {
		t.Fatalf("order = %+v, want total 3750 EUR with a payment", o)
	}

	if got := getProduct(t, sku).Available; got != 4 {
		t.Errorf("available after buying 3 of 7 = %d, want 4", got)
	}
	res = do(t, request{Method: "GET", URL: st.Service(stack.Payment).InternalURL() + "/v1/payments/" + o.PaymentID, Client: paymentClient()})
	if res.Status != http.StatusOK {
		t.Fatalf("GET payment %s: %s", o.PaymentID, res)
	}
	var p payment
	res.decode(t, &p)
	if p.Status != "captured" || p.AmountCents != o.TotalCents || p.Currency != "EUR" || p.OrderID != o.ID || p.CardLast4 != "4242" {
		t.Errorf("payment = %+v, want captured %d EUR for order %s", p, o.TotalCents, o.ID)
	}

	res = do(t, request{Method: "GET", URL: orderURL() + "/v1/orders/" + o.ID, Token: token})
	if res.Status != http.StatusOK {
		t.Fatalf("GET order: %s", res)
	}
	// Another customer must not learn the order exists.
	if res := do(t, request{Method: "GET", URL: orderURL() + "/v1/orders/" + o.ID, Token: mintedCustomer(t)}); res.Status != http.StatusNotFound {
		t.Errorf("someone else's order: %s, want 404", res)
	}
	var list struct{ Items []order }
	do(t, request{Method: "GET", URL: orderURL() + "/v1/orders", Token: token}).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != o.ID {
		t.Errorf("GET /v1/orders = %+v, want just %s", list.Items, o.ID)
	}
}
