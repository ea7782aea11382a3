package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// postOrder places one order of one unit and expects it confirmed.
func postOrder(ctx context.Context, c *http.Client, baseURL, token, sku, key string) error {
	body := fmt.Sprintf(`{"items":[{"sku":%q,"quantity":1}],"card":{"number":"4242424242424242","exp_month":12,"exp_year":%d,"cvc":"123"}}`,
		sku, time.Now().Year()+2)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/orders", bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusCreated || !bytes.Contains(data, []byte(`"status":"confirmed"`)) {
		return fmt.Errorf("POST /v1/orders: %d %s", res.StatusCode, bytes.TrimSpace(data))
	}
	return nil
}
