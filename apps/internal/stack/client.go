package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Product is a catalog entry to seed.
type Product struct {
	SKU        string `json:"-"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Stock      int    `json:"stock"`
}

// DemoCatalog is a small catalog for local runs.
var DemoCatalog = []Product{
	{SKU: "mug", Name: "Shopstack mug", PriceCents: 1200, Currency: "EUR", Stock: 100},
	{SKU: "tshirt", Name: "Shopstack T-shirt", PriceCents: 2500, Currency: "EUR", Stock: 50},
	{SKU: "sticker", Name: "Sticker pack", PriceCents: 300, Currency: "EUR", Stock: 1000},
}

// AdminToken logs the first admin in through the user service.
func (st *Stack) AdminToken(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {st.AdminUsername}, "password": {st.AdminPassword}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.Service(User).PublicURL()+"/v1/auth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := st.call(req, http.StatusOK, &tok); err != nil {
		return "", fmt.Errorf("admin login: %w", err)
	}
	return tok.AccessToken, nil
}

// Seed creates or replaces products as the admin, through the inventory
// service's public API.
func (st *Stack) Seed(ctx context.Context, products []Product) error {
	token, err := st.AdminToken(ctx)
	if err != nil {
		return err
	}
	for _, p := range products {
		body, err := json.Marshal(p)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, st.Service(Inventory).PublicURL()+"/v1/products/"+url.PathEscape(p.SKU), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		if err := st.call(req, http.StatusOK, nil); err != nil {
			return fmt.Errorf("seeding %s: %w", p.SKU, err)
		}
	}
	return nil
}

func (st *Stack) call(req *http.Request, want int, out any) error {
	res, err := st.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, bytes.TrimSpace(body))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}
