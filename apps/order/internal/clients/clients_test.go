package clients_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/clients"
	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/order/internal/ordertest"
	"github.com/shopstack/shopstack/apps/pkg/breaker"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

func TestAnswersBecomeTypedErrors(t *testing.T) {
	ca := ordertest.FromMTLSTest(mtlstest.NewCA(t, "shop CA"))
	inv := ordertest.StartInventory(t, ca, map[string]ordertest.Product{"A": {PriceCents: 100, Currency: "EUR", OnHand: 1}})
	pay := ordertest.StartPayment(t, ca)
	ic, pc := ordertest.Clients(t, ca, inv, pay, ordertest.ClientOptions{})
	ctx := context.Background()
	card := func(n string) domain.Card {
		return domain.Card{Number: n, ExpMonth: 1, ExpYear: time.Now().Year() + 1, CVC: "123"}
	}

	tests := map[string]struct {
		call func() error
		want error
	}{
		"insufficient stock": {func() error {
			_, err := ic.Reserve(ctx, "o1", []domain.Item{{SKU: "A", Quantity: 2}}, time.Minute)
			return err
		}, clients.ErrInsufficientStock},
		"unknown sku": {func() error {
			_, err := ic.Reserve(ctx, "o2", []domain.Item{{SKU: "Z", Quantity: 1}}, time.Minute)
			return err
		}, clients.ErrUnknownSKU},
		"declined": {func() error { _, err := pc.Charge(ctx, "o3", 100, "EUR", card(ordertest.CardDeclined)); return err }, clients.ErrCardDeclined},
		"invalid card": {func() error {
			_, err := pc.Charge(ctx, "o4", 100, "EUR", card("4242424242424241"))
			return err
		}, clients.ErrCardInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) || clients.Ambiguous(err) || clients.Unavailable(err) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("processor timeout (504) is unavailable but not ambiguous", func(t *testing.T) {
		_, err := pc.Charge(ctx, "o5", 100, "EUR", card(ordertest.CardTimeout))
		if !clients.Unavailable(err) || clients.Ambiguous(err) {
			t.Fatalf("got %v", err)
		}
	})
}

// The clients verify who answers: a service holding another identity is
// refused before any request is sent.
func TestCalleeIdentityIsChecked(t *testing.T) {
	mca := mtlstest.NewCA(t, "shop CA")
	ca := ordertest.FromMTLSTest(mca)
	inv := ordertest.StartInventory(t, ca, nil)
	src, err := mtls.NewSource(ca(t, ordertest.OrderID), mtls.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := src.ClientTLS(mtls.Peer{SPIFFEID: ordertest.PaymentID}) // expects payment at inventory's address
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientx.New(clientx.Config{Name: "payment", BaseURL: inv.URL, TLS: conf, Breaker: breaker.Config{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = clients.NewPayment(c).Charge(context.Background(), "o1", 100, "EUR", domain.Card{Number: ordertest.CardApproved})
	if err == nil || !clients.Unavailable(err) {
		t.Fatalf("got %v", err)
	}
	if inv.Hits() != 0 {
		t.Fatal("the request reached a callee with the wrong identity")
	}
}

func TestServerErrorsMayHaveTakenEffect(t *testing.T) {
	tests := map[string]struct {
		err                 error
		ambiguous, rejected bool
	}{
		"500 after the effect (say, a capture not recorded)": {&clientx.StatusError{Status: 500, Code: "internal"}, true, false},
		"503 from the callee":                                {&clientx.StatusError{Status: 503, Code: "unavailable"}, true, false},
		"504 timeout: nothing applied":                       {&clientx.StatusError{Status: 504, Code: "timeout"}, false, false},
		"400 refused as invalid":                             {&clientx.StatusError{Status: 400, Code: "invalid"}, false, true},
		"422 refused":                                        {&clientx.StatusError{Status: 422, Code: "mixed_currencies"}, false, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := clients.Ambiguous(tc.err); got != tc.ambiguous {
				t.Errorf("Ambiguous = %v, want %v", got, tc.ambiguous)
			}
			if got := clients.Rejected(tc.err); got != tc.rejected {
				t.Errorf("Rejected = %v, want %v", got, tc.rejected)
			}
		})
	}
}
