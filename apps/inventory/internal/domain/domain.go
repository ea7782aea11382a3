// Package domain holds the inventory service's types and rules: products
// with on-hand and reserved stock, reservations and their states, the
// validation of what clients send, and the typed errors every adapter
// reports.
package domain

import (
	"time"
)

// Product is a catalog entry and its stock. Reserved units are held by
// active reservations; the database keeps 0 <= Reserved <= OnHand.
type Product struct {
	SKU        string
	Name       string
	PriceCents int64
	Currency   string
	OnHand     int
	Reserved   int
	UpdatedAt  time.Time
}

// Available is what can still be reserved.
func (p Product) Available() int { return p.OnHand - p.Reserved }

// ProductInput creates or replaces a product (PUT /v1/products/{sku}).
// Stock is the on-hand count.
type ProductInput struct {
	SKU        string
	Name       string
	PriceCents int64
	Currency   string
	Stock      int
}

// Status is where a reservation is in its life.
type Status string

// A reservation starts reserved and ends committed (the order went
// through), released (the order gave it back) or expired (nobody committed
// it in time; the sweeper gave the stock back).
const (
	StatusReserved  Status = "reserved"
	StatusCommitted Status = "committed"
	StatusReleased  Status = "released"
	StatusExpired   Status = "expired"
)

// Item is one line of a reservation. PriceCents is the unit price when the
// stock was reserved.
type Item struct {
	SKU        string
	Quantity   int
	PriceCents int64
}

// Reservation holds stock for an order until it is committed, released or
// expires.
type Reservation struct {
	ID         string
	OrderID    string
	Status     Status
	Items      []Item
	TotalCents int64
	Currency   string
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

// ReserveRequest asks for stock for an order. Items is normalised by
// Validate: one line per SKU, sorted by SKU.
type ReserveRequest struct {
	OrderID string
	Items   []Item // PriceCents is ignored
	TTL     time.Duration
}
