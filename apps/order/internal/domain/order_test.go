package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateItems(t *testing.T) {
	tests := map[string]struct {
		items []Item
		field string // "" means valid
	}{
		"one item":         {items: []Item{{SKU: "BOOK-1", Quantity: 1}}},
		"dots underscores": {items: []Item{{SKU: "a.b_c-1", Quantity: MaxQuantity}}},
		"none":             {items: nil, field: "items"},
		"too many":         {items: make([]Item, MaxItems+1), field: "items"},
		"SQL in sku":       {items: []Item{{SKU: "x' OR 1=1--", Quantity: 1}}, field: "items[0].sku"},
		"empty sku":        {items: []Item{{SKU: "", Quantity: 1}}, field: "items[0].sku"},
		"long sku":         {items: []Item{{SKU: strings.Repeat("a", 65), Quantity: 1}}, field: "items[0].sku"},
		"leading dash":     {items: []Item{{SKU: "-a", Quantity: 1}}, field: "items[0].sku"},
		"zero quantity":    {items: []Item{{SKU: "A", Quantity: 0}}, field: "items[0].quantity"},
		"huge quantity":    {items: []Item{{SKU: "A", Quantity: MaxQuantity + 1}}, field: "items[0].quantity"},
		"duplicate":        {items: []Item{{SKU: "A", Quantity: 1}, {SKU: "A", Quantity: 1}}, field: "items[1].sku"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateItems(tc.items)
			var ve *ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
				t.Fatalf("got %v, want an error on %s", err, tc.field)
			}
		})
	}
}

func TestValidateCard(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ok := Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2027, CVC: "123"}
	tests := map[string]struct {
		change func(*Card)
		field  string
	}{
		"valid":         {change: func(*Card) {}},
		"letters":       {change: func(c *Card) { c.Number = "4242x24242424242" }, field: "card.number"},
		"short":         {change: func(c *Card) { c.Number = "4242" }, field: "card.number"},
		"month 13":      {change: func(c *Card) { c.ExpMonth = 13 }, field: "card.exp_month"},
		"past year":     {change: func(c *Card) { c.ExpYear = 2020 }, field: "card.exp_year"},
		"two-digit cvc": {change: func(c *Card) { c.CVC = "12" }, field: "card.cvc"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := ValidateCard(c, now)
			var ve *ValidationError
			if (tc.field == "") != (err == nil) || (err != nil && (!errors.As(err, &ve) || ve.Field != tc.field)) {
				t.Fatalf("got %v, want field %q", err, tc.field)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	card := Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2027, CVC: "123"}
	a := Fingerprint([]Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}, card)
	if b := Fingerprint([]Item{{SKU: "B", Quantity: 2}, {SKU: "A", Quantity: 1}}, card); a != b {
		t.Error("the order of items changed the fingerprint")
	}
	if c := Fingerprint([]Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 3}}, card); a == c {
		t.Error("a different quantity kept the fingerprint")
	}
	other := card
	other.Number = "5555555555554444"
	if d := Fingerprint([]Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}, other); a == d {
		t.Error("a different card kept the fingerprint")
	}
	if strings.Contains(a, "4242") {
		t.Error("the fingerprint shows card digits")
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	for key, valid := range map[string]bool{"abc-123": true, "": false, "has space": false, strings.Repeat("k", 129): false, "ünicode": false} {
		if err := ValidateIdempotencyKey(key); (err == nil) != valid {
			t.Errorf("%q: got %v", key, err)
		}
	}
}
