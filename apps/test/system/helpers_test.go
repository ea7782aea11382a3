package system

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// Cards of the payment processor simulator (apps/API.md).
const (
	cardApproved = "4242424242424242"
	cardDeclined = "4000000000000002"
)

// response is an HTTP answer, read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// decode unmarshals the body into v or fails the test.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
}

// errorCode is the "code" of a JSON error body.
func (r response) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// request is one call: body is sent as is when it is a string or []byte,
// and as JSON otherwise.
type request struct {
	Method, URL string
	Token       string
	Body        any
	ContentType string
	Header      map[string]string
	Client      *http.Client
}

var publicClient = sync1(func() *http.Client { return st.HTTPClient() })

// sync1 defers building a value until the stack exists.
func sync1[T any](f func() T) func() T {
	var v T
	var done bool
	return func() T {
		if !done {
			v, done = f(), true
		}
		return v
	}
}

func do(t *testing.T, req request) response {
	t.Helper()
	res, err := send(t.Context(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return res
}

func send(ctx context.Context, req request) (response, error) {
	var body io.Reader
	contentType := req.ContentType
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(data)
	}
	if body != nil && contentType == "" {
		contentType = "application/json"
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, req.URL, body)
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if req.Token != "" {
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Header {
		r.Header.Set(k, v)
	}
	c := req.Client
	if c == nil {
		c = publicClient()
	}
	res, err := c.Do(r)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return response{Status: res.StatusCode, Header: res.Header, Body: data}, err
}

func userURL() string      { return st.Service(stack.User).PublicURL() }
func inventoryURL() string { return st.Service(stack.Inventory).PublicURL() }
func orderURL() string     { return st.Service(stack.Order).PublicURL() }

// register creates an account and returns its id.
func register(t *testing.T, email, password string) string {
	t.Helper()
	res := do(t, request{Method: "POST", URL: userURL() + "/v1/users", Body: map[string]string{"email": email, "password": password}})
	if res.Status != http.StatusCreated {
		t.Fatalf("registering %s: %s", email, res)
	}
	var u struct{ ID string }
	res.decode(t, &u)
	return u.ID
}

// login runs the password grant and returns the access token.
func login(t *testing.T, username, password string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}.Encode()
	res := do(t, request{Method: "POST", URL: userURL() + "/v1/auth/token", Body: form, ContentType: "application/x-www-form-urlencoded"})
	if res.Status != http.StatusOK {
		t.Fatalf("token for %s: %s", username, res)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	res.decode(t, &tok)
	if tok.AccessToken == "" {
		t.Fatalf("token for %s: no access_token in %s", username, res)
	}
	return tok.AccessToken
}

var adminToken = func() func(t *testing.T) string {
	var tok string
	return func(t *testing.T) string {
		t.Helper()
		if tok == "" {
			tok = login(t, st.AdminUsername, st.AdminPassword)
		}
		return tok
	}
}()

// customer registers a fresh customer and returns a token for it.
func customer(t *testing.T) string {
	t.Helper()
	email := "buyer-" + strings.ToLower(rand.Text()[:10]) + "@example.com"
	password := "a long enough password " + rand.Text()[:8]
	register(t, email, password)
	return login(t, email, password)
}

// mintedCustomer is a token the operator's signing key signed for a new
// subject, without the cost of a password hash: for load, not for the
// user service's own behaviour.
func mintedCustomer(t *testing.T) string {
	t.Helper()
	tok, err := st.Keys.Token(newUUID(), []string{"customer"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Available  int    `json:"available"`
}

// newSKU is a SKU no other test uses.
func newSKU(prefix string) string { return prefix + "-" + strings.ToLower(rand.Text()[:8]) }

// putProduct creates or replaces a product as the admin.
func putProduct(t *testing.T, sku string, priceCents int64, stock int) {
	t.Helper()
	res := do(t, request{Method: "PUT", URL: inventoryURL() + "/v1/products/" + sku, Token: adminToken(t),
		Body: map[string]any{"name": "Product " + sku, "price_cents": priceCents, "currency": "EUR", "stock": stock}})
	if res.Status != http.StatusOK {
		t.Fatalf("PUT product %s: %s", sku, res)
	}
}

func getProduct(t *testing.T, sku string) product {
	t.Helper()
	res := do(t, request{Method: "GET", URL: inventoryURL() + "/v1/products/" + sku})
	if res.Status != http.StatusOK {
		t.Fatalf("GET product %s: %s", sku, res)
	}
	var p product
	res.decode(t, &p)
	return p
}

type item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type order struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Items      []item `json:"items"`
	TotalCents int64  `json:"total_cents"`
	Currency   string `json:"currency"`
	PaymentID  string `json:"payment_id"`
}

func card(number string) map[string]any {
	return map[string]any{"number": number, "exp_month": 12, "exp_year": time.Now().Year() + 3, "cvc": "123"}
}

func orderRequest(token, key string, card map[string]any, items ...item) request {
	return request{Method: "POST", URL: orderURL() + "/v1/orders", Token: token,
		Header: map[string]string{"Idempotency-Key": key}, Body: map[string]any{"items": items, "card": card}}
}

// placeOrder posts an order under a new idempotency key.
func placeOrder(t *testing.T, token string, card map[string]any, items ...item) (response, order) {
	t.Helper()
	res := do(t, orderRequest(token, newUUID(), card, items...))
	var o order
	if len(res.Body) > 0 && res.Body[0] == '{' {
		_ = json.Unmarshal(res.Body, &o)
	}
	return res, o
}

// queryInt runs a query returning one integer against a service's own
// database, as that service's role.
func queryInt(t *testing.T, svc, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, st.DatabaseDSN(svc))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %s: %v", svc, sql, err)
	}
	return n
}

// eventually retries check every 100 ms until it passes or timeout is over.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for i := 0; i < 1000; i++ {
		if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
