package clients

import (
	"context"
	"net/url"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
)

// Reservation is inventory's answer about a reservation.
type Reservation struct {
	ID         string        `json:"id"`
	OrderID    string        `json:"order_id"`
	Status     string        `json:"status"` // reserved, committed, released
	Items      []domain.Item `json:"items"`
	ExpiresAt  time.Time     `json:"expires_at"`
	TotalCents int64         `json:"total_cents"`
	Currency   string        `json:"currency"`
}

// Inventory is the inventory service's reservation API.
type Inventory struct {
	c *clientx.Client
}

// NewInventory wraps a client for the inventory service.
func NewInventory(c *clientx.Client) *Inventory { return &Inventory{c: c} }

// Client is the underlying client, e.g. for its breaker.
func (i *Inventory) Client() *clientx.Client { return i.c }

type reserveRequest struct {
	OrderID    string        `json:"order_id"`
	Items      []domain.Item `json:"items"`
	TTLSeconds int           `json:"ttl_seconds"`
}

// Reserve holds stock for an order. The order ID is the idempotency key, so
// asking again returns the same reservation.
func (i *Inventory) Reserve(ctx context.Context, orderID string, items []domain.Item, ttl time.Duration) (Reservation, error) {
	var out Reservation
	err := i.c.Do(ctx, clientx.Request{
		Method: "POST", Path: "/v1/reservations", Header: idempotencyKey(orderID),
		Body: reserveRequest{OrderID: orderID, Items: items, TTLSeconds: int(ttl.Seconds())},
	}, &out)
	return out, classify(err, insufficientStock, unknownSKU)
}

// Commit turns a reservation into a sale (idempotent).
func (i *Inventory) Commit(ctx context.Context, reservationID string) (Reservation, error) {
	var out Reservation
	err := i.c.Do(ctx, clientx.Request{Method: "POST", Path: "/v1/reservations/" + url.PathEscape(reservationID) + "/commit"}, &out)
	return out, classify(err, reservationClosed)
}

// Release gives reserved stock back (idempotent; a committed reservation
// is ErrReservationClosed).
func (i *Inventory) Release(ctx context.Context, reservationID string) (Reservation, error) {
	var out Reservation
	err := i.c.Do(ctx, clientx.Request{Method: "POST", Path: "/v1/reservations/" + url.PathEscape(reservationID) + "/release"}, &out)
	return out, classify(err, reservationClosed)
}
