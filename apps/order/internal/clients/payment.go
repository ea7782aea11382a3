package clients

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
)

// Charge is payment's answer about a payment.
type Charge struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	Status      string `json:"status"` // pending, captured, declined, failed, refunded
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	CardLast4   string `json:"card_last4"`
}

// Statuses of a payment, as payment reports them.
const (
	ChargePending  = "pending"  // the charge is still in flight
	ChargeCaptured = "captured" // the money was taken
	ChargeRefunded = "refunded" // taken, then (partly or wholly) given back
)

// Payment is the payment service's API.
type Payment struct {
	c *clientx.Client
}

// NewPayment wraps a client for the payment service.
func NewPayment(c *clientx.Client) *Payment { return &Payment{c: c} }

// Client is the underlying client, e.g. for its breaker.
func (p *Payment) Client() *clientx.Client { return p.c }

type chargeRequest struct {
	OrderID     string      `json:"order_id"`
	AmountCents int64       `json:"amount_cents"`
	Currency    string      `json:"currency"`
	Card        domain.Card `json:"card"`
}

// ChargeKey and RefundKey are the idempotency keys of an order's charge and
// refund: derived from the order ID, so a retry can never charge twice.
func ChargeKey(orderID string) string { return "order-" + orderID + "-charge" }

// RefundKey is the idempotency key of an order's refund.
func RefundKey(orderID string) string { return "order-" + orderID + "-refund" }

// Charge captures amountCents from the card for an order.
func (p *Payment) Charge(ctx context.Context, orderID string, amountCents int64, currency string, card domain.Card) (Charge, error) {
	var out Charge
	err := p.c.Do(ctx, clientx.Request{
		Method: "POST", Path: "/v1/payments", Header: idempotencyKey(ChargeKey(orderID)),
		Body: chargeRequest{OrderID: orderID, AmountCents: amountCents, Currency: currency, Card: card},
	}, &out)
	return out, classify(err, cardDeclined, cardInvalid)
}

// Refund gives the whole charge back (idempotent by the order's refund key).
func (p *Payment) Refund(ctx context.Context, orderID, paymentID string) (Charge, error) {
	var out Charge
	err := p.c.Do(ctx, clientx.Request{
		Method: "POST", Path: "/v1/payments/" + url.PathEscape(paymentID) + "/refund",
		Header: idempotencyKey(RefundKey(orderID)), Body: struct{}{},
	}, &out)
	return out, classify(err, alreadyRefunded)
}

// ErrAlreadyRefunded: the payment had been refunded in full already, so
// nothing is left to give back.
var ErrAlreadyRefunded = errors.New("already refunded")

var alreadyRefunded = answer{http.StatusConflict, "already_refunded", ErrAlreadyRefunded}

// ByOrder returns every payment payment holds for an order, newest first:
// what tells whether a charge whose answer was lost took place.
func (p *Payment) ByOrder(ctx context.Context, orderID string) ([]Charge, error) {
	var out struct {
		Items []Charge `json:"items"`
	}
	err := p.c.Do(ctx, clientx.Request{Method: "GET", Path: "/v1/payments", Query: url.Values{"order_id": {orderID}}}, &out)
	return out.Items, err
}
