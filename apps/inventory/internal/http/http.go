// Package http is the inventory service's HTTP API (see apps/API.md): the
// public catalog and the internal reservations the order service calls.
// Authentication of end users and of calling services is the caller's
// wiring: Public needs a token verifier for the admin route, and Internal
// must be mounted behind the mTLS caller check.
package http

import (
	"context"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopstack/shopstack/apps/inventory/internal/domain"
	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// Catalog is the product catalog.
type Catalog interface {
	ListProducts(ctx context.Context) ([]domain.Product, error)
	GetProduct(ctx context.Context, sku string) (domain.Product, error)
	PutProduct(ctx context.Context, in domain.ProductInput) (domain.Product, error)
}

// Stock holds and settles reservations.
type Stock interface {
	Reserve(ctx context.Context, req domain.ReserveRequest) (res domain.Reservation, replayed bool, err error)
	Commit(ctx context.Context, id string) (domain.Reservation, error)
	Release(ctx context.Context, id string) (domain.Reservation, error)
}

// AdminRole may change the catalog.
const AdminRole = "admin"

// ReplayedHeader marks the answer to a repeated reservation request.
const ReplayedHeader = "Idempotent-Replayed"

// API serves the inventory endpoints.
type API struct {
	Catalog Catalog
	Stock   Stock
	Tokens  *auth.Verifier
	// Reservations counts reservation outcomes (reserved,
	// insufficient_stock, committed, released, expired); nil counts nothing.
	Reservations *prometheus.CounterVec
}

// NewReservationsCounter is the inventory_reservations_total metric,
// registered on reg.
func NewReservationsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "inventory_reservations_total",
		Help: "Reservation outcomes: reserved, insufficient_stock, committed, released, expired.",
	}, []string{"outcome"})
	reg.MustRegister(c)
	return c
}

func (a *API) count(outcome string) {
	if a.Reservations != nil {
		a.Reservations.WithLabelValues(outcome).Inc()
	}
}

// Public is the end-user API.
func (a *API) Public() http.Handler {
	rt := httpx.NewRouter()
	rt.Handle("GET /v1/products", handle(a.listProducts))
	rt.Handle("GET /v1/products/{sku}", handle(a.getProduct))
	rt.Handle("PUT /v1/products/{sku}", a.Tokens.Require(auth.RequireRole(AdminRole)(handle(a.putProduct))))
	return rt
}

// Internal is the service-to-service API.
func (a *API) Internal() http.Handler {
	rt := httpx.NewRouter()
	rt.Handle("POST /v1/reservations", handle(a.reserve))
	rt.Handle("POST /v1/reservations/{id}/commit", handle(a.commit))
	rt.Handle("POST /v1/reservations/{id}/release", handle(a.release))
	return rt
}

// handle maps every error a handler returns through toHTTP.
func handle(f httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return toHTTP(f(w, r))
	}
}

// statusOf is the HTTP status of each domain error code.
var statusOf = map[domain.Code]*httpx.Error{
	domain.CodeInvalid:              httpx.ErrInvalid,
	domain.CodeNotFound:             httpx.ErrNotFound,
	domain.CodeInsufficientStock:    httpx.ErrConflict,
	domain.CodeIdempotencyKeyReused: httpx.ErrConflict,
	domain.CodeReservationClosed:    httpx.ErrConflict,
	domain.CodeStockBelowReserved:   httpx.ErrConflict,
	domain.CodeMixedCurrencies:      httpx.ErrUnprocessable,
}

// toHTTP is the one place where domain and store errors become responses.
func toHTTP(err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		kind, ok := statusOf[de.Code]
		if !ok {
			kind = httpx.ErrInternal
		}
		return &httpx.Error{Status: kind.Status, Code: string(de.Code), Message: de.Message, Field: de.Field, Err: err}
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return httpx.Wrap(httpx.ErrUnavailable, err, "the database is unavailable, try again later")
	}
	return err
}

// productView is a product as clients see it.
type productView struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Available  int    `json:"available"`
}

func viewProduct(p domain.Product) productView {
	return productView{SKU: p.SKU, Name: p.Name, PriceCents: p.PriceCents, Currency: p.Currency, Available: p.Available()}
}

func (a *API) listProducts(w http.ResponseWriter, r *http.Request) error {
	products, err := a.Catalog.ListProducts(r.Context())
	if err != nil {
		return err
	}
	items := make([]productView, len(products))
	for i, p := range products {
		items[i] = viewProduct(p)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string][]productView{"items": items})
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request) error {
	sku := r.PathValue("sku")
	if err := domain.ValidateSKU("sku", sku); err != nil {
		return err
	}
	p, err := a.Catalog.GetProduct(r.Context(), sku)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, viewProduct(p))
}

// productBody is the body of PUT /v1/products/{sku}. Numbers are pointers
// so that a missing field is told apart from zero.
type productBody struct {
	Name       string `json:"name"`
	PriceCents *int64 `json:"price_cents"`
	Currency   string `json:"currency"`
	Stock      *int   `json:"stock"`
}

func (a *API) putProduct(w http.ResponseWriter, r *http.Request) error {
	sku := r.PathValue("sku")
	if err := domain.ValidateSKU("sku", sku); err != nil {
		return err
	}
	var body productBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return err
	}
	switch {
	case body.PriceCents == nil:
		return domain.FieldError("price_cents", "price_cents is required")
	case body.Stock == nil:
		return domain.FieldError("stock", "stock is required")
	}
	in := domain.ProductInput{SKU: sku, Name: body.Name, PriceCents: *body.PriceCents, Currency: body.Currency, Stock: *body.Stock}
	if err := in.Validate(); err != nil {
		return err
	}
	p, err := a.Catalog.PutProduct(r.Context(), in)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, viewProduct(p))
}

// reserveBody is the body of POST /v1/reservations.
type reserveBody struct {
	OrderID    string     `json:"order_id"`
	Items      []itemBody `json:"items"`
	TTLSeconds int64      `json:"ttl_seconds"`
}

type itemBody struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type itemView struct {
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

type reservationView struct {
	ID         string     `json:"id"`
	OrderID    string     `json:"order_id"`
	Status     string     `json:"status"`
	Items      []itemView `json:"items"`
	ExpiresAt  string     `json:"expires_at"`
	TotalCents int64      `json:"total_cents"`
	Currency   string     `json:"currency"`
}

func viewReservation(res domain.Reservation) reservationView {
	items := make([]itemView, len(res.Items))
	for i, it := range res.Items {
		items[i] = itemView{SKU: it.SKU, Quantity: it.Quantity, PriceCents: it.PriceCents}
	}
	return reservationView{
		ID: res.ID, OrderID: res.OrderID, Status: string(res.Status), Items: items,
		ExpiresAt: res.ExpiresAt.UTC().Format(time.RFC3339), TotalCents: res.TotalCents, Currency: res.Currency,
	}
}

func (a *API) reserve(w http.ResponseWriter, r *http.Request) error {
	var body reserveBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return err
	}
	maxTTL := int64(domain.MaxTTL / time.Second)
	if body.TTLSeconds < 0 || body.TTLSeconds > maxTTL {
		return domain.FieldError("ttl_seconds", "ttl_seconds must be between %d and %d", int64(domain.MinTTL/time.Second), maxTTL)
	}
	// The order id is the idempotency key; a header naming another key
	// is a client bug worth refusing.
	if key := r.Header.Get("Idempotency-Key"); key != "" && !strings.EqualFold(key, body.OrderID) {
		return domain.FieldError("Idempotency-Key", "the Idempotency-Key header must equal order_id")
	}
	req := domain.ReserveRequest{OrderID: body.OrderID, TTL: time.Duration(body.TTLSeconds) * time.Second}
	for _, it := range body.Items {
		req.Items = append(req.Items, domain.Item{SKU: it.SKU, Quantity: it.Quantity})
	}
	req, err := req.Normalize()
	if err != nil {
		return err
	}
	res, replayed, err := a.Stock.Reserve(r.Context(), req)
	if err != nil {
		if errors.Is(err, domain.ErrInsufficientStock) {
			a.count("insufficient_stock")
		}
		return err
	}
	if replayed {
		w.Header().Set(ReplayedHeader, "true")
	} else {
		a.count("reserved")
	}
	return httpx.WriteJSON(w, http.StatusCreated, viewReservation(res))
}

func (a *API) commit(w http.ResponseWriter, r *http.Request) error {
	return a.settle(w, r, a.Stock.Commit)
}

func (a *API) release(w http.ResponseWriter, r *http.Request) error {
	return a.settle(w, r, a.Stock.Release)
}

func (a *API) settle(w http.ResponseWriter, r *http.Request, op func(context.Context, string) (domain.Reservation, error)) error {
	id := r.PathValue("id")
	if !domain.IsUUID(id) {
		return domain.FieldError("id", "the reservation id must be a UUID")
	}
	res, err := op(r.Context(), strings.ToLower(id))
	if err != nil {
		return err
	}
	a.count(string(res.Status))
	return httpx.WriteJSON(w, http.StatusOK, viewReservation(res))
}
