// Package http is the payment service's HTTP API (see apps/API.md): the
// internal routes order calls, and the one function that maps domain errors
// to HTTP answers.
package http

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// IdempotencyKeyHeader names the request's idempotency key.
const IdempotencyKeyHeader = "Idempotency-Key"

// Payments is what the API needs of the domain.
type Payments interface {
	Charge(ctx context.Context, key string, req domain.ChargeRequest) (domain.Payment, error)
	Refund(ctx context.Context, key, paymentID string, amountCents *int64) (domain.Payment, error)
	Get(ctx context.Context, id string) (domain.Payment, error)
	ByOrder(ctx context.Context, orderID string) ([]domain.Payment, error)
}

// Internal returns the routes of the internal listener. Authorization of
// the caller is the listener's middleware's job, not the routes'.
func Internal(p Payments) *httpx.Router {
	h := &handlers{payments: p}
	r := httpx.NewRouter()
	r.HandleFunc("POST /v1/payments", h.charge)
	r.HandleFunc("POST /v1/payments/{id}/refund", h.refund)
	r.HandleFunc("GET /v1/payments", h.list)
	r.HandleFunc("GET /v1/payments/{id}", h.get)
	return r
}

// Public returns the routes of the public listener: none, payment has no
// end-user API, so every request gets a JSON 404.
func Public() *httpx.Router { return httpx.NewRouter() }

type handlers struct {
	payments Payments
}

type cardJSON struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	CVC      string `json:"cvc"`
}

type chargeJSON struct {
	OrderID     string   `json:"order_id"`
	AmountCents int64    `json:"amount_cents"`
	Currency    string   `json:"currency"`
	Card        cardJSON `json:"card"`
}

type refundJSON struct {
	AmountCents *int64 `json:"amount_cents"`
}

// PaymentJSON is a payment as the API shows it: the card only by its last
// four digits.
type PaymentJSON struct {
	ID            string    `json:"id"`
	OrderID       string    `json:"order_id"`
	Status        string    `json:"status"`
	AmountCents   int64     `json:"amount_cents"`
	Currency      string    `json:"currency"`
	CardLast4     string    `json:"card_last4"`
	RefundedCents int64     `json:"refunded_cents"`
	CreatedAt     time.Time `json:"created_at"`
}

func paymentJSON(p domain.Payment) PaymentJSON {
	return PaymentJSON{
		ID: p.ID, OrderID: p.OrderID, Status: string(p.Status), AmountCents: p.AmountCents,
		Currency: p.Currency, CardLast4: p.CardLast4, RefundedCents: p.RefundedCents, CreatedAt: p.CreatedAt.UTC(),
	}
}

func (h *handlers) charge(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get(IdempotencyKeyHeader)
	if err := domain.ValidateIdempotencyKey(key); err != nil {
		return apiError(err)
	}
	var in chargeJSON
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	p, err := h.payments.Charge(r.Context(), key, domain.ChargeRequest{
		OrderID: in.OrderID, AmountCents: in.AmountCents, Currency: in.Currency,
		Card: domain.Card{Number: in.Card.Number, ExpMonth: in.Card.ExpMonth, ExpYear: in.Card.ExpYear, CVC: in.Card.CVC},
	})
	if err != nil {
		return apiError(err)
	}
	return httpx.WriteJSON(w, http.StatusCreated, paymentJSON(p))
}

func (h *handlers) refund(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get(IdempotencyKeyHeader)
	if err := domain.ValidateIdempotencyKey(key); err != nil {
		return apiError(err)
	}
	var in refundJSON
	// The body is optional: no body refunds the whole charge.
	if r.ContentLength != 0 {
		if err := httpx.DecodeJSON(r, &in); err != nil {
			return err
		}
	}
	p, err := h.payments.Refund(r.Context(), key, r.PathValue("id"), in.AmountCents)
	if err != nil {
		return apiError(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, paymentJSON(p))
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	p, err := h.payments.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return apiError(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, paymentJSON(p))
}

// listJSON is the answer of a payment lookup.
type listJSON struct {
	Items []PaymentJSON `json:"items"`
}

// list answers GET /v1/payments?order_id=: the order's payments, newest
// first. order_id is the only parameter, given once.
func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for name, values := range q {
		switch {
		case name != "order_id":
			return httpx.FieldError(name, "unknown query parameter %q; only order_id is accepted", name)
		case len(values) != 1:
			return httpx.FieldError("order_id", "order_id must be given once")
		}
	}
	payments, err := h.payments.ByOrder(r.Context(), q.Get("order_id"))
	if err != nil {
		return apiError(err)
	}
	out := listJSON{Items: make([]PaymentJSON, 0, len(payments))}
	for _, p := range payments {
		out.Items = append(out.Items, paymentJSON(p))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

// statusOf maps each kind of domain error to its status. 402 has no httpx
// kind: only payment answers it.
var statusOf = map[domain.Kind]int{
	domain.KindInvalid:       http.StatusBadRequest,
	domain.KindUnprocessable: http.StatusUnprocessableEntity,
	domain.KindDeclined:      http.StatusPaymentRequired,
	domain.KindTimeout:       http.StatusGatewayTimeout,
	domain.KindConflict:      http.StatusConflict,
	domain.KindNotFound:      http.StatusNotFound,
}

// apiError is the one place a domain error becomes an HTTP status and code;
// anything else passes to httpx.WriteError unchanged (a 500, logged).
func apiError(err error) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	status, ok := statusOf[de.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &httpx.Error{Status: status, Code: de.Code, Message: de.Message, Field: de.Field}
}
