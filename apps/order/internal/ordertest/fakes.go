// Package ordertest has what the order service's tests share: in-process
// inventory and payment services that implement their internal API
// (apps/API.md) with in-memory state over real mTLS, and helpers that start
// PostgreSQL and Redis. The fakes stand in only for these tests; the
// system tests run the real services.
package ordertest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// Identities of the services in the tests' trust domain.
const (
	OrderID     = "spiffe://cluster.local/ns/shop/sa/acme-order"
	InventoryID = "spiffe://cluster.local/ns/shop/sa/acme-inventory"
	PaymentID   = "spiffe://cluster.local/ns/shop/sa/acme-payment"
)

// Cards the payment fake knows, as the processor simulator of API.md.
const (
	CardApproved = "4242424242424242"
	CardDeclined = "4000000000000002"
	CardTimeout  = "4000000000000119"
	CardOtherOK  = "5555555555554444"
)

var discard = slog.New(slog.DiscardHandler)

// server is an internal mTLS listener allowing only the order service.
type server struct {
	URL  string
	srv  *http.Server
	hits atomic.Int64
}

// Identity lays out a certificate for a SPIFFE ID and DNS names, with its CA
// bundle, in a new directory (tls.crt, tls.key, ca.crt) and returns it.
type Identity func(t testing.TB, spiffeID string, dnsNames ...string) string

// FromMTLSTest issues identities from an mtlstest CA.
func FromMTLSTest(ca *mtlstest.CA) Identity {
	return func(t testing.TB, id string, dns ...string) string { return mtlstest.ServiceDir(t, ca, id, dns...).Dir }
}

// FromTestenv issues identities from a testenv CA, the one that also signs
// the PostgreSQL and Redis certificates.
func FromTestenv(ca *testenv.CA) Identity {
	return func(t testing.TB, id string, dns ...string) string {
		return ca.TLSDir(t, ca.Issue(t, testenv.CertSpec{CommonName: "service", Hosts: dns, URIs: []string{id}}))
	}
}

func serve(t testing.TB, ident Identity, id string, h httpx.HandlerFunc) *server {
	t.Helper()
	src, err := mtls.NewSource(ident(t, id, "localhost"), mtls.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	authorize, err := mtls.RequireCaller([]string{OrderID})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &http.Server{
		Handler:   httpx.Instrument(authorize(counted), discard, nil, 1<<20),
		TLSConfig: src.MutualTLS(), ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = s.srv.Close() })
	s.URL = "https://" + ln.Addr().String()
	return s
}

// Hits counts the requests that reached the service.
func (s *server) Hits() int64 { return s.hits.Load() }

// Stop closes the listener and every connection: the service is down.
func (s *server) Stop() { _ = s.srv.Close() }

// Product is a product of the inventory fake.
type Product struct {
	PriceCents int64
	Currency   string
	OnHand     int
}

// Reservation is the inventory fake's record of a reservation.
type Reservation struct {
	ID         string
	OrderID    string
	Status     string
	Items      []item
	TotalCents int64
	Currency   string
	ExpiresAt  time.Time
	key, body  string
}

type item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Inventory is the inventory service's reservation API with in-memory state.
type Inventory struct {
	*server
	mu           sync.Mutex
	products     map[string]*Product
	reservations map[string]*Reservation
	byKey        map[string]string
	seq          int
	// FailCommit makes commits answer 500.
	FailCommit atomic.Bool
	// LoseReserveAnswers is how many of the next reservations are made but
	// answered only after the caller gave up (at most 10s later).
	LoseReserveAnswers atomic.Int32
}

// StartInventory serves products (copied) on a new mTLS listener.
func StartInventory(t testing.TB, ca Identity, products map[string]Product) *Inventory {
	t.Helper()
	inv := &Inventory{products: map[string]*Product{}, reservations: map[string]*Reservation{}, byKey: map[string]string{}}
	for sku, p := range products {
		inv.products[sku] = &p
	}
	inv.server = serve(t, ca, InventoryID, inv.handle)
	return inv
}

func (inv *Inventory) handle(w http.ResponseWriter, r *http.Request) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if r.Method != http.MethodPost {
		return httpx.Errorf(httpx.ErrMethodNotAllowed, "only POST")
	}
	if r.URL.Path == "/v1/reservations" {
		return inv.reserve(w, r)
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/v1/reservations/")
	id, action, _ := strings.Cut(rest, "/")
	res := inv.reservations[id]
	if res == nil {
		return httpx.Errorf(httpx.ErrNotFound, "no reservation %s", id)
	}
	switch action {
	case "commit":
		if inv.FailCommit.Load() {
			return httpx.Errorf(httpx.ErrInternal, "commit failed")
		}
		switch res.Status {
		case "reserved":
			for _, it := range res.Items {
				inv.products[it.SKU].OnHand -= it.Quantity
			}
			res.Status = "committed"
		case "released":
			return httpx.Errorf(httpx.ErrConflict, "the reservation was released")
		}
	case "release":
		switch res.Status {
		case "reserved":
			res.Status = "released"
		case "committed":
			return httpx.Errorf(httpx.ErrConflict, "the reservation was committed")
		}
	default:
		return httpx.Errorf(httpx.ErrNotFound, "no route")
	}
	return httpx.WriteJSON(w, http.StatusOK, res.answer())
}

func (inv *Inventory) reserve(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		OrderID    string `json:"order_id"`
		Items      []item `json:"items"`
		TTLSeconds int    `json:"ttl_seconds"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || key != in.OrderID || len(in.Items) == 0 || in.TTLSeconds <= 0 {
		return httpx.Errorf(httpx.ErrInvalid, "order_id, items, ttl_seconds and Idempotency-Key = order_id are required")
	}
	body, _ := json.Marshal(in)
	if id, ok := inv.byKey[key]; ok {
		res := inv.reservations[id]
		if res.body != string(body) {
			return &httpx.Error{Status: http.StatusConflict, Code: "idempotency_key_reused", Message: "different request"}
		}
		return httpx.WriteJSON(w, http.StatusCreated, res.answer())
	}
	res := &Reservation{OrderID: in.OrderID, Status: "reserved", Items: in.Items, key: key, body: string(body),
		ExpiresAt: time.Now().Add(time.Duration(in.TTLSeconds) * time.Second).UTC()}
	for _, it := range in.Items {
		p := inv.products[it.SKU]
		if p == nil {
			return httpx.Errorf(httpx.ErrNotFound, "unknown sku %s", it.SKU)
		}
		if it.Quantity <= 0 || inv.available(it.SKU) < it.Quantity {
			return &httpx.Error{Status: http.StatusConflict, Code: "insufficient_stock", Message: "not enough " + it.SKU}
		}
		res.TotalCents += p.PriceCents * int64(it.Quantity)
		res.Currency = p.Currency
	}
	inv.seq++
	res.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", inv.seq)
	inv.reservations[res.ID] = res
	inv.byKey[key] = res.ID
	if inv.LoseReserveAnswers.Add(-1) >= 0 {
		inv.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		inv.mu.Lock()
	}
	return httpx.WriteJSON(w, http.StatusCreated, res.answer())
}

func (inv *Inventory) available(sku string) int {
	n := inv.products[sku].OnHand
	for _, res := range inv.reservations {
		if res.Status != "reserved" {
			continue
		}
		for _, it := range res.Items {
			if it.SKU == sku {
				n -= it.Quantity
			}
		}
	}
	return n
}

func (res *Reservation) answer() map[string]any {
	return map[string]any{
		"id": res.ID, "order_id": res.OrderID, "status": res.Status, "items": res.Items,
		"expires_at": res.ExpiresAt, "total_cents": res.TotalCents, "currency": res.Currency,
	}
}

// Available is on-hand stock minus active reservations.
func (inv *Inventory) Available(sku string) int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.available(sku)
}

// OnHand is the stock left after committed reservations.
func (inv *Inventory) OnHand(sku string) int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.products[sku].OnHand
}

// Reservations lists the reservations made, oldest first.
func (inv *Inventory) Reservations() []Reservation {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]Reservation, 0, len(inv.reservations))
	for _, r := range inv.reservations {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CountByStatus counts reservations per status.
func (inv *Inventory) CountByStatus() map[string]int {
	m := map[string]int{}
	for _, r := range inv.Reservations() {
		m[r.Status]++
	}
	return m
}

// Charge is the payment fake's record of a payment.
type Charge struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	CardLast4   string `json:"card_last4"`
	// RefundedCents is what a refund gave back.
	RefundedCents int64 `json:"refunded_cents"`
	seq           int
	body          string
}

// Payment is the payment service with the processor simulator's cards.
type Payment struct {
	*server
	mu      sync.Mutex
	charges map[string]*Charge // by id
	byKey   map[string]string  // charge idempotency key -> id
	refunds map[string]string  // refund idempotency key -> id
	seq     int
	// Hang makes every call wait until the caller gives up (at most 10s):
	// a payment service that accepts connections but does not answer.
	Hang atomic.Bool
}

// StartPayment starts the payment fake.
func StartPayment(t testing.TB, ca Identity) *Payment {
	t.Helper()
	p := &Payment{charges: map[string]*Charge{}, byKey: map[string]string{}, refunds: map[string]string{}}
	p.server = serve(t, ca, PaymentID, p.handle)
	return p
}

func (p *Payment) handle(w http.ResponseWriter, r *http.Request) error {
	if p.Hang.Load() {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return httpx.Errorf(httpx.ErrTimeout, "processor timeout")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/v1/payments" {
		return p.byOrder(w, r)
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return httpx.Errorf(httpx.ErrInvalid, "Idempotency-Key is required")
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/payments" {
		return p.charge(w, r, key)
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/v1/payments/")
	if id, ok := strings.CutSuffix(rest, "/refund"); ok && r.Method == http.MethodPost {
		c := p.charges[id]
		if c == nil {
			return httpx.Errorf(httpx.ErrNotFound, "no payment %s", id)
		}
		var in struct {
			AmountCents int64 `json:"amount_cents"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			return err
		}
		if prev, ok := p.refunds[key]; ok && prev != id {
			return &httpx.Error{Status: http.StatusConflict, Code: "idempotency_key_reused", Message: "different request"}
		}
		if _, replay := p.refunds[key]; !replay && c.Status == "refunded" {
			return &httpx.Error{Status: http.StatusConflict, Code: "already_refunded", Message: "the payment has been refunded in full"}
		}
		if c.Status != "captured" && c.Status != "refunded" {
			return &httpx.Error{Status: http.StatusConflict, Code: "not_refundable", Message: "only a captured payment can be refunded"}
		}
		p.refunds[key] = id
		c.Status, c.RefundedCents = "refunded", c.AmountCents
		return httpx.WriteJSON(w, http.StatusOK, c)
	}
	return httpx.Errorf(httpx.ErrNotFound, "no route")
}

func (p *Payment) charge(w http.ResponseWriter, r *http.Request, key string) error {
	var in struct {
		OrderID     string `json:"order_id"`
		AmountCents int64  `json:"amount_cents"`
		Currency    string `json:"currency"`
		Card        struct {
			Number   string `json:"number"`
			ExpMonth int    `json:"exp_month"`
			ExpYear  int    `json:"exp_year"`
			CVC      string `json:"cvc"`
		} `json:"card"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	if id, ok := p.byKey[key]; ok {
		c := p.charges[id]
		if c.body != string(body) {
			return &httpx.Error{Status: http.StatusConflict, Code: "idempotency_key_reused", Message: "different request"}
		}
		return httpx.WriteJSON(w, http.StatusCreated, c)
	}
	switch n := in.Card.Number; {
	case n == CardDeclined:
		return &httpx.Error{Status: http.StatusPaymentRequired, Code: "card_declined", Message: "declined"}
	case n == CardTimeout:
		return httpx.Errorf(httpx.ErrTimeout, "processor timeout")
	case !luhn(n):
		return httpx.Errorf(httpx.ErrUnprocessable, "invalid card number")
	}
	if in.AmountCents <= 0 || in.Currency == "" {
		return httpx.Errorf(httpx.ErrInvalid, "amount_cents and currency are required")
	}
	p.seq++
	c := &Charge{ID: fmt.Sprintf("00000000-0000-4000-9000-%012d", p.seq), OrderID: in.OrderID, Status: "captured",
		AmountCents: in.AmountCents, Currency: in.Currency, CardLast4: in.Card.Number[len(in.Card.Number)-4:], body: string(body)}
	c.seq = p.seq
	p.charges[c.ID] = c
	p.byKey[key] = c.ID
	return httpx.WriteJSON(w, http.StatusCreated, c)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// byOrder answers GET /v1/payments?order_id=: the order's payments, newest
// first, in whatever state they are (an unknown order: an empty list).
func (p *Payment) byOrder(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for name, values := range q {
		if name != "order_id" || len(values) != 1 {
			return httpx.FieldError(name, "only order_id is accepted, once")
		}
	}
	orderID := strings.ToLower(q.Get("order_id"))
	if !uuidPattern.MatchString(orderID) {
		return httpx.FieldError("order_id", "order_id must be a UUID")
	}
	items := []*Charge{}
	for _, c := range p.charges {
		if strings.ToLower(c.OrderID) == orderID {
			items = append(items, c)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].seq > items[j].seq })
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

// SetStatus changes the status of a payment, e.g. to make it "pending"
// as a charge still in flight at the processor is.
func (p *Payment) SetStatus(id, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.charges[id]; c != nil {
		c.Status = status
	}
}

// Charges lists the payments made, oldest first.
func (p *Payment) Charges() []Charge {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Charge, 0, len(p.charges))
	for _, c := range p.charges {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CountByStatus counts payments per status.
func (p *Payment) CountByStatus() map[string]int {
	m := map[string]int{}
	for _, c := range p.Charges() {
		m[c.Status]++
	}
	return m
}

func luhn(n string) bool {
	sum, double := 0, false
	for i := len(n) - 1; i >= 0; i-- {
		d := int(n[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return len(n) > 0 && sum%10 == 0
}
