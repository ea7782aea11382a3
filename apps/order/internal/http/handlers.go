// Package http is the order service's public API (apps/API.md): create an
// order under an Idempotency-Key, list and read orders. Customers see only
// their own orders; admins see all.
package http

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/order/internal/saga"
	"github.com/shopstack/shopstack/apps/order/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// RoleAdmin sees every order.
const RoleAdmin = "admin"

// Defaults of Handlers.
const (
	DefaultReplayWait = 20 * time.Second
	listLimit         = 100
)

// Handlers serve the order API.
type Handlers struct {
	Store *store.Store
	Saga  *saga.Saga
	// ReplayWait bounds how long a retry waits for the first request with
	// its idempotency key to finish; zero: DefaultReplayWait.
	ReplayWait time.Duration
	Now        func() time.Time // nil: time.Now
}

// Routes registers the API on a router, behind tokens.
func (h *Handlers) Routes(tokens *auth.Verifier) *httpx.Router {
	rt := httpx.NewRouter()
	rt.Handle("POST /v1/orders", tokens.Require(httpx.HandlerFunc(h.create)))
	rt.Handle("GET /v1/orders", tokens.Require(httpx.HandlerFunc(h.list)))
	rt.Handle("GET /v1/orders/{id}", tokens.Require(httpx.HandlerFunc(h.get)))
	return rt
}

// createRequest is the body of POST /v1/orders.
type createRequest struct {
	Items []domain.Item `json:"items"`
	Card  *domain.Card  `json:"card"`
}

// orderJSON is an order as the API shows it.
type orderJSON struct {
	ID         string        `json:"id"`
	Status     domain.Status `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Items      []domain.Item `json:"items"`
	TotalCents int64         `json:"total_cents"`
	Currency   string        `json:"currency"`
	PaymentID  string        `json:"payment_id,omitempty"`
	CustomerID string        `json:"customer_id"`
	CreatedAt  time.Time     `json:"created_at"`
}

func toJSON(o domain.Order) orderJSON {
	items := o.Items
	if items == nil {
		items = []domain.Item{}
	}
	return orderJSON{
		ID: o.ID, Status: o.Status, Reason: o.Reason, Items: items, TotalCents: o.TotalCents, Currency: o.Currency,
		PaymentID: o.PaymentID, CustomerID: o.CustomerID, CreatedAt: o.CreatedAt.UTC().Truncate(time.Second),
	}
}

func (h *Handlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	claims, _ := auth.ClaimsFrom(r.Context())
	key := r.Header.Get("Idempotency-Key")
	if err := domain.ValidateIdempotencyKey(key); err != nil {
		return mapError(err)
	}
	var req createRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := domain.ValidateItems(req.Items); err != nil {
		return mapError(err)
	}
	if req.Card == nil {
		return httpx.FieldError("card", "card is required")
	}
	if err := domain.ValidateCard(*req.Card, h.now()); err != nil {
		return mapError(err)
	}
	o := domain.Order{
		ID: newUUID(), CustomerID: claims.Subject, Items: req.Items,
		IdempotencyKey: key, Fingerprint: domain.Fingerprint(req.Items, *req.Card),
	}
	got, created, err := h.Store.Create(r.Context(), o, h.Saga.Lease())
	if err != nil {
		return err
	}
	if !created {
		if got.Fingerprint != o.Fingerprint {
			return mapError(domain.ErrIdempotencyKeyReuse)
		}
		if got, err = h.waitFinished(r.Context(), got); err != nil {
			return err
		}
		return writeOrder(w, got)
	}
	final, err := h.Saga.Run(r.Context(), got, *req.Card)
	if err != nil {
		return httpx.Wrap(httpx.ErrUnavailable, err, "the order could not be completed now; it will be finished or undone shortly")
	}
	return writeOrder(w, final)
}

// waitFinished waits, bounded, for the saga of an order another request
// started.
func (h *Handlers) waitFinished(ctx context.Context, o domain.Order) (domain.Order, error) {
	wait := h.ReplayWait
	if wait <= 0 {
		wait = DefaultReplayWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !o.Status.Terminal() {
		select {
		case <-ctx.Done():
			return o, mapError(domain.ErrInProgress)
		case <-tick.C:
		}
		var err error
		if o, err = h.Store.Get(ctx, o.ID); err != nil {
			return o, err
		}
	}
	return o, nil
}

// statusOf is the HTTP status that answers a create request, by the
// order's state, so a replay gets the status the first answer had.
func statusOf(o domain.Order) int {
	switch {
	case o.Status == domain.StatusConfirmed:
		return http.StatusCreated
	case o.Status != domain.StatusFailed:
		return http.StatusAccepted
	}
	switch o.Reason {
	case domain.ReasonCardDeclined:
		return http.StatusPaymentRequired
	case domain.ReasonInsufficientStock:
		return http.StatusConflict
	case domain.ReasonUnknownSKU, domain.ReasonCardInvalid, domain.ReasonRejected:
		return http.StatusUnprocessableEntity
	}
	return http.StatusServiceUnavailable
}

func writeOrder(w http.ResponseWriter, o domain.Order) error {
	status := statusOf(o)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	return httpx.WriteJSON(w, status, toJSON(o))
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	claims, _ := auth.ClaimsFrom(r.Context())
	customer := claims.Subject
	if claims.HasRole(RoleAdmin) {
		customer = ""
	}
	orders, err := h.Store.List(r.Context(), customer, listLimit)
	if err != nil {
		return err
	}
	out := make([]orderJSON, 0, len(orders))
	for _, o := range orders {
		out = append(out, toJSON(o))
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	claims, _ := auth.ClaimsFrom(r.Context())
	id := r.PathValue("id")
	if !uuidPattern.MatchString(id) {
		return httpx.Errorf(httpx.ErrNotFound, "order not found")
	}
	notFound := httpx.Errorf(httpx.ErrNotFound, "order %s not found", id)
	o, err := h.Store.Get(r.Context(), id)
	if errors.Is(err, domain.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	// Someone else's order does not exist, as far as the caller can tell.
	if o.CustomerID != claims.Subject && !claims.HasRole(RoleAdmin) {
		return notFound
	}
	return httpx.WriteJSON(w, http.StatusOK, toJSON(o))
}

// mapError is the one place domain errors become API errors.
func mapError(err error) error {
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		return httpx.FieldError(ve.Field, "%s", ve.Message)
	case errors.Is(err, domain.ErrIdempotencyKeyReuse):
		return &httpx.Error{Status: http.StatusConflict, Code: "idempotency_key_reused",
			Message: "this Idempotency-Key was used for a different request"}
	case errors.Is(err, domain.ErrInProgress):
		return &httpx.Error{Status: http.StatusConflict, Code: "idempotency_key_in_progress",
			Message: "the first request with this Idempotency-Key is still being processed; retry later"}
	case errors.Is(err, domain.ErrNotFound):
		return httpx.Errorf(httpx.ErrNotFound, "order not found")
	}
	return err
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
