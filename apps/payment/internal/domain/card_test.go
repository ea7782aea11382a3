package domain

import (
	"errors"
	"testing"
	"time"
)

func TestLuhn(t *testing.T) {
	for number, want := range map[string]bool{
		"4242424242424242": true,
		"4000000000000002": true,
		"4000000000000119": true,
		"5555555555554444": true,
		"4242424242424241": false,
		"1234567812345678": false,
		"":                 false,
		"42424242424242a2": false,
	} {
		if got := Luhn(number); got != want {
			t.Errorf("Luhn(%q) = %v, want %v", number, got, want)
		}
	}
}

func TestCardValidate(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	good := Card{Number: "4242424242424242", ExpMonth: 3, ExpYear: 2026, CVC: "123"}
	tests := map[string]struct {
		change func(*Card)
		want   error  // a sentinel, or nil
		field  string // for invalid_request errors
	}{
		"valid through the end of its month": {change: func(*Card) {}},
		"missing number":                     {change: func(c *Card) { c.Number = "" }, field: "card.number"},
		"letters":                            {change: func(c *Card) { c.Number = "4242-4242-4242-4242" }, field: "card.number"},
		"too short":                          {change: func(c *Card) { c.Number = "42424242" }, field: "card.number"},
		"month 13":                           {change: func(c *Card) { c.ExpMonth = 13 }, field: "card.exp_month"},
		"two-digit year":                     {change: func(c *Card) { c.ExpYear = 26 }, field: "card.exp_year"},
		"cvc of two digits":                  {change: func(c *Card) { c.CVC = "12" }, field: "card.cvc"},
		"Luhn-invalid":                       {change: func(c *Card) { c.Number = "4242424242424241" }, want: ErrInvalidCardNumber},
		"expired last month":                 {change: func(c *Card) { c.ExpMonth = 2 }, want: ErrCardExpired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.change(&c)
			err := c.Validate(now)
			switch {
			case tc.field != "":
				e, ok := AsError(err)
				if !ok || e.Kind != KindInvalid || e.Field != tc.field {
					t.Fatalf("got %v, want an invalid_request on %s", err, tc.field)
				}
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			case err != nil:
				t.Fatalf("unexpected %v", err)
			}
		})
	}
}

func TestChargeRequestValidate(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	card := Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123"}
	for name, tc := range map[string]struct {
		req   ChargeRequest
		field string
	}{
		"SQL in order_id":  {ChargeRequest{OrderID: "1'; DROP TABLE payments;--", AmountCents: 100, Currency: "EUR", Card: card}, "order_id"},
		"zero amount":      {ChargeRequest{OrderID: NewID(), AmountCents: 0, Currency: "EUR", Card: card}, "amount_cents"},
		"huge amount":      {ChargeRequest{OrderID: NewID(), AmountCents: MaxAmountCents + 1, Currency: "EUR", Card: card}, "amount_cents"},
		"lowercase money":  {ChargeRequest{OrderID: NewID(), AmountCents: 100, Currency: "eur", Card: card}, "currency"},
		"missing order_id": {ChargeRequest{AmountCents: 100, Currency: "EUR", Card: card}, "order_id"},
	} {
		t.Run(name, func(t *testing.T) {
			e, ok := AsError(tc.req.Validate(now))
			if !ok || e.Field != tc.field {
				t.Fatalf("got %v, want an error on %s", e, tc.field)
			}
		})
	}
	if err := (ChargeRequest{OrderID: NewID(), AmountCents: 100, Currency: "EUR", Card: card}).Validate(now); err != nil {
		t.Fatal(err)
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(), NewID()
	if !ValidID(a) || !ValidID(b) || a == b {
		t.Fatalf("NewID gave %q and %q", a, b)
	}
}

func TestIdempotencyKey(t *testing.T) {
	for key, ok := range map[string]bool{"order-1": true, "": false, "has space": false, "ünïcode": false, string(make([]byte, 256)): false} {
		if err := ValidateIdempotencyKey(key); (err == nil) != ok {
			t.Errorf("%q: got %v", key, err)
		}
	}
}
