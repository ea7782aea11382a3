package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopstack/shopstack/apps/inventory/internal/domain"
)

func TestProductInputValidate(t *testing.T) {
	valid := domain.ProductInput{SKU: "mug-1", Name: "Mug", PriceCents: 1250, Currency: "EUR", Stock: 3}
	tests := map[string]struct {
		change func(*domain.ProductInput)
		field  string // "" means valid
	}{
		"valid":                        {func(*domain.ProductInput) {}, ""},
		"free":                         {func(p *domain.ProductInput) { p.PriceCents = 0 }, ""},
		"sku with a quote":             {func(p *domain.ProductInput) { p.SKU = "mug'1" }, "sku"},
		"sku with a space":             {func(p *domain.ProductInput) { p.SKU = "mug 1" }, "sku"},
		"sku too long":                 {func(p *domain.ProductInput) { p.SKU = strings.Repeat("a", 65) }, "sku"},
		"blank name":                   {func(p *domain.ProductInput) { p.Name = "  " }, "name"},
		"name too long":                {func(p *domain.ProductInput) { p.Name = strings.Repeat("é", 201) }, "name"},
		"name with a bidi override":    {func(p *domain.ProductInput) { p.Name = "Mug\u202egpj.exe" }, "name"},
		"name with a zero-width space": {func(p *domain.ProductInput) { p.Name = "M\u200bug" }, "name"},
		"name in another script":       {func(p *domain.ProductInput) { p.Name = "Чашка 杯子" }, ""},
		"negative price":               {func(p *domain.ProductInput) { p.PriceCents = -1 }, "price_cents"},
		"currency lower":               {func(p *domain.ProductInput) { p.Currency = "eur" }, "currency"},
		"currency too long":            {func(p *domain.ProductInput) { p.Currency = "EURO" }, "currency"},
		"negative stock":               {func(p *domain.ProductInput) { p.Stock = -1 }, "stock"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := valid
			tc.change(&in)
			err := in.Validate()
			if got := fieldOf(err); got != tc.field || (tc.field != "" && !errors.Is(err, domain.ErrInvalid)) {
				t.Fatalf("Validate() = %v, want an error on %q", err, tc.field)
			}
		})
	}
}

func TestReserveRequestNormalize(t *testing.T) {
	order := "6F9619FF-8B86-4011-B42D-00C04FC964FF"
	got, err := domain.ReserveRequest{OrderID: order, Items: []domain.Item{
		{SKU: "b", Quantity: 1}, {SKU: "a", Quantity: 2}, {SKU: "b", Quantity: 3},
	}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ReserveRequest{
		OrderID: strings.ToLower(order),
		Items:   []domain.Item{{SKU: "a", Quantity: 2}, {SKU: "b", Quantity: 4}},
		TTL:     domain.DefaultTTL,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Normalize (-want +got):\n%s", diff)
	}

	refused := map[string]struct {
		req   domain.ReserveRequest
		field string
	}{
		"not a UUID":     {domain.ReserveRequest{OrderID: "1; DROP", Items: []domain.Item{{SKU: "a", Quantity: 1}}}, "order_id"},
		"no items":       {domain.ReserveRequest{OrderID: order}, "items"},
		"zero quantity":  {domain.ReserveRequest{OrderID: order, Items: []domain.Item{{SKU: "a"}}}, "items[0].quantity"},
		"bad sku":        {domain.ReserveRequest{OrderID: order, Items: []domain.Item{{SKU: "a'--", Quantity: 1}}}, "items[0].sku"},
		"TTL too short":  {domain.ReserveRequest{OrderID: order, Items: []domain.Item{{SKU: "a", Quantity: 1}}, TTL: time.Millisecond}, "ttl_seconds"},
		"TTL too long":   {domain.ReserveRequest{OrderID: order, Items: []domain.Item{{SKU: "a", Quantity: 1}}, TTL: 48 * time.Hour}, "ttl_seconds"},
		"merged too big": {domain.ReserveRequest{OrderID: order, Items: []domain.Item{{SKU: "a", Quantity: domain.MaxQuantity}, {SKU: "a", Quantity: 1}}}, "items"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.req.Normalize(); fieldOf(err) != tc.field {
				t.Fatalf("Normalize() = %v, want an error on %q", err, tc.field)
			}
		})
	}
}

func fieldOf(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Field
	}
	return ""
}
