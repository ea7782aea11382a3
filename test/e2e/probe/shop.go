package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Step is one call of a scenario, as it was answered.
type Step struct {
	Name   string          `json:"name"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"` // the answer when it is JSON
	Text   string          `json:"text,omitempty"` // the answer when it is not
	Error  string          `json:"error,omitempty"`
	MS     int64           `json:"ms"`
}

// JourneyResult is the whole journey; FailedAt names the first step that was
// not answered as expected (the steps after it were not run).
type JourneyResult struct {
	Steps    []Step `json:"steps"`
	FailedAt string `json:"failed_at,omitempty"`
}

// shopClient calls the Shop's public endpoints.
type shopClient struct {
	c       *http.Client
	timeout time.Duration
}

func (s shopClient) call(name, method, u, token string, headers map[string]string, body []byte, contentType string) Step {
	r := request{method: method, url: u, headers: http.Header{}, body: body}
	if contentType != "" {
		r.headers.Set("Content-Type", contentType)
	}
	if token != "" {
		r.headers.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		r.headers.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	res := r.do(ctx, s.c)
	st := Step{Name: name, Status: res.Status, Error: res.Error, MS: res.MS}
	if json.Valid([]byte(res.Body)) {
		st.Body = json.RawMessage(res.Body)
	} else {
		st.Text = res.Body
	}
	return st
}

func (s shopClient) token(name, userURL, login, password string) (Step, string) {
	form := url.Values{"grant_type": {"password"}, "username": {login}, "password": {password}}
	st := s.call(name, http.MethodPost, userURL+"/v1/auth/token", "", nil, []byte(form.Encode()), "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if st.Status == http.StatusOK {
		_ = json.Unmarshal(st.Body, &tok)
	}
	return st, tok.AccessToken
}

// orderBody is a POST /v1/orders body with the approving test card.
func orderBody(sku string, qty int) []byte {
	b, _ := json.Marshal(map[string]any{
		"items": []map[string]any{{"sku": sku, "quantity": qty}},
		"card":  map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": time.Now().Year() + 2, "cvc": "123"},
	})
	return b
}

func newKey(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func readTrimmed(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b)), err
}

type shopFlags struct {
	tls                    tlsFlags
	user, order, inventory string
	timeout                time.Duration
	sku, email, password   string
	qty                    int
	adminDir, keyPrefix    string
	stock, price           int
	count                  int
	interval, deadline     time.Duration
}

func runJourney(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("journey", flag.ContinueOnError)
	var f shopFlags
	f.tls.register(fs)
	fs.StringVar(&f.user, "user", "", "base URL of the user service's public port")
	fs.StringVar(&f.order, "order", "", "base URL of the order service's public port")
	fs.StringVar(&f.inventory, "inventory", "", "base URL of the inventory service's public port")
	fs.StringVar(&f.adminDir, "admin-dir", "", "folder with the admin's username and password files")
	fs.StringVar(&f.sku, "sku", "", "SKU of the product the admin creates")
	fs.IntVar(&f.stock, "stock", 100, "stock of the product")
	fs.IntVar(&f.price, "price", 1999, "price in cents")
	fs.IntVar(&f.qty, "qty", 3, "quantity ordered")
	fs.StringVar(&f.email, "email", "", "the customer's email")
	fs.StringVar(&f.password, "password", "", "the customer's password")
	fs.DurationVar(&f.timeout, "timeout", 20*time.Second, "per call")
	if _, err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if f.user == "" || f.order == "" || f.inventory == "" || f.adminDir == "" || f.sku == "" || f.email == "" || f.password == "" {
		return nil, errors.New("-user, -order, -inventory, -admin-dir, -sku, -email and -password are required")
	}
	adminLogin, err1 := readTrimmed(f.adminDir, "username")
	adminPassword, err2 := readTrimmed(f.adminDir, "password")
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	c, err := newClient(f.tls, f.timeout, 4)
	if err != nil {
		return nil, err
	}
	s := shopClient{c: c, timeout: f.timeout}
	res := JourneyResult{Steps: []Step{}}
	// expect records a step and reports whether it was answered with want.
	expect := func(st Step, want int) bool {
		res.Steps = append(res.Steps, st)
		if st.Status != want {
			res.FailedAt = st.Name
			return false
		}
		return true
	}

	st, adminToken := s.token("admin_token", f.user, adminLogin, adminPassword)
	if !expect(st, http.StatusOK) {
		return res, nil
	}
	product, _ := json.Marshal(map[string]any{"name": "E2E widget " + f.sku, "price_cents": f.price, "currency": "EUR", "stock": f.stock})
	productURL := f.inventory + "/v1/products/" + url.PathEscape(f.sku)
	if !expect(s.call("put_product", http.MethodPut, productURL, adminToken, nil, product, "application/json"), http.StatusOK) {
		return res, nil
	}
	if !expect(s.call("product_before", http.MethodGet, productURL, "", nil, nil, ""), http.StatusOK) {
		return res, nil
	}
	account, _ := json.Marshal(map[string]string{"email": f.email, "password": f.password})
	if !expect(s.call("register", http.MethodPost, f.user+"/v1/users", "", nil, account, "application/json"), http.StatusCreated) {
		return res, nil
	}
	st, token := s.token("token", f.user, f.email, f.password)
	if !expect(st, http.StatusOK) {
		return res, nil
	}
	key := map[string]string{"Idempotency-Key": newKey("e2e-journey-")}
	body := orderBody(f.sku, f.qty)
	st = s.call("order", http.MethodPost, f.order+"/v1/orders", token, key, body, "application/json")
	if !expect(st, http.StatusCreated) {
		return res, nil
	}
	var ord struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(st.Body, &ord)
	// The same key and body again is a retry: the same order, not a second one.
	if !expect(s.call("order_retry", http.MethodPost, f.order+"/v1/orders", token, key, body, "application/json"), http.StatusCreated) {
		return res, nil
	}
	if !expect(s.call("order_get", http.MethodGet, f.order+"/v1/orders/"+url.PathEscape(ord.ID), token, nil, nil, ""), http.StatusOK) {
		return res, nil
	}
	if !expect(s.call("orders_list", http.MethodGet, f.order+"/v1/orders", token, nil, nil, ""), http.StatusOK) {
		return res, nil
	}
	expect(s.call("product_after", http.MethodGet, productURL, "", nil, nil, ""), http.StatusOK)
	return res, nil
}

// OrdersResult counts the orders of one orders run.
type OrdersResult struct {
	Token     Step           `json:"token"`
	Placed    int            `json:"placed"`
	Confirmed int            `json:"confirmed"`
	Statuses  map[string]int `json:"statuses"`
	Failures  []Step         `json:"failures,omitempty"` // the first 20 orders not confirmed
	MaxMS     int64          `json:"max_ms"`
	ElapsedMS int64          `json:"elapsed_ms"`
}

// runOrders logs a customer in once and places -count orders of -qty one
// after the other, -interval apart, each with a fresh Idempotency-Key. An
// order counts as confirmed only when answered 201 with status confirmed.
func runOrders(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	var f shopFlags
	f.tls.register(fs)
	fs.StringVar(&f.user, "user", "", "base URL of the user service's public port")
	fs.StringVar(&f.order, "order", "", "base URL of the order service's public port")
	fs.StringVar(&f.sku, "sku", "", "SKU to order")
	fs.IntVar(&f.qty, "qty", 1, "quantity per order")
	fs.StringVar(&f.email, "email", "", "the customer's email")
	fs.StringVar(&f.password, "password", "", "the customer's password")
	fs.IntVar(&f.count, "count", 10, "orders to place (1 to 500)")
	fs.DurationVar(&f.interval, "interval", 250*time.Millisecond, "pause between orders")
	fs.DurationVar(&f.deadline, "deadline", 2*time.Minute, "stop placing orders after this long (at most 10m)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "per call")
	fs.StringVar(&f.keyPrefix, "key-prefix", "e2e-", "prefix of the Idempotency-Keys")
	if _, err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case f.user == "" || f.order == "" || f.sku == "" || f.email == "" || f.password == "":
		return nil, errors.New("-user, -order, -sku, -email and -password are required")
	case f.count < 1 || f.count > 500:
		return nil, errors.New("-count must be between 1 and 500")
	case f.deadline <= 0 || f.deadline > 10*time.Minute:
		return nil, errors.New("-deadline must be above 0 and at most 10m")
	}
	c, err := newClient(f.tls, f.timeout, 2)
	if err != nil {
		return nil, err
	}
	s := shopClient{c: c, timeout: f.timeout}
	start := time.Now()
	res := OrdersResult{Statuses: map[string]int{}}
	defer func() { res.ElapsedMS = ms(time.Since(start)) }()
	st, token := s.token("token", f.user, f.email, f.password)
	res.Token = st
	if token == "" {
		res.ElapsedMS = ms(time.Since(start))
		return res, nil
	}
	body := orderBody(f.sku, f.qty)
	for i := range f.count {
		if time.Since(start) > f.deadline {
			break
		}
		if i > 0 {
			time.Sleep(f.interval)
		}
		st := s.call(fmt.Sprintf("order-%d", i), http.MethodPost, f.order+"/v1/orders", token,
			map[string]string{"Idempotency-Key": newKey(f.keyPrefix)}, body, "application/json")
		res.Placed++
		res.MaxMS = max(res.MaxMS, st.MS)
		res.Statuses[strconv.Itoa(st.Status)]++
		var o struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(st.Body, &o)
		if st.Status == http.StatusCreated && o.Status == "confirmed" {
			res.Confirmed++
		} else if len(res.Failures) < 20 {
			res.Failures = append(res.Failures, st)
		}
	}
	res.ElapsedMS = ms(time.Since(start))
	return res, nil
}
