// Package domain holds the order service's types and rules, free of I/O:
// orders, their items, the states a saga moves them through and the typed
// errors the adapters map to responses.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Status is where an order is in its saga:
//
//	pending -> reserved -> charged -> confirmed
//	any of the first three -> failed (with a Reason)
type Status string

// The states of an order.
const (
	StatusPending   Status = "pending"   // created; stock not reserved yet
	StatusReserved  Status = "reserved"  // stock reserved; not charged yet
	StatusCharged   Status = "charged"   // charged; reservation not committed yet
	StatusConfirmed Status = "confirmed" // done
	StatusFailed    Status = "failed"    // given up; see Reason and Compensated
)

// Terminal reports whether the saga has reached an end state.
func (s Status) Terminal() bool { return s == StatusConfirmed || s == StatusFailed }

// Why an order failed. They are part of the API (the order's "reason").
const (
	ReasonInsufficientStock = "insufficient_stock"
	ReasonUnknownSKU        = "unknown_sku"
	ReasonCardDeclined      = "card_declined"
	ReasonCardInvalid       = "card_invalid"
	ReasonUnavailable       = "dependency_unavailable"
	ReasonRejected          = "rejected" // a dependency refused the request itself (4xx): retrying cannot help
	ReasonCommitFailed      = "commit_failed"
	ReasonInterrupted       = "interrupted" // the saga stopped mid-way (a crash) and was undone
)

// Item is one line of an order.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Card is a payment card. It is passed to the payment service and never
// stored by the order service.
type Card struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	CVC      string `json:"cvc"`
}

// Order is a customer's order and the saga's record of it.
type Order struct {
	ID         string
	CustomerID string
	Status     Status
	Reason     string // why it failed; empty otherwise
	Items      []Item
	TotalCents int64
	Currency   string

	// ReservationID and PaymentID are the downstream resources the saga
	// created, so they can be committed, released or refunded.
	ReservationID string
	PaymentID     string
	// ReserveUnknown and ChargeUnknown are set while a call was made whose
	// outcome is not known (it timed out): a reservation or charge may
	// exist that the IDs above do not name. A charge in doubt is settled
	// by asking payment for the order's payments; until then a failed
	// order is not compensated and its order.failed event is held back.
	ReserveUnknown bool
	ChargeUnknown  bool
	// Compensated is true once everything a failed order left behind has
	// been undone; a failed order with Compensated false is retried by the
	// recovery loop.
	Compensated bool

	IdempotencyKey string
	Fingerprint    string // of the request that created the order
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Errors the adapters map to responses.
var (
	ErrNotFound            = errors.New("order not found")
	ErrIdempotencyKeyReuse = errors.New("the idempotency key was used for a different request")
	ErrInProgress          = errors.New("an order for this idempotency key is still being processed")
)

// ValidationError is a request the service refuses before storing anything.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Limits of one order.
const (
	MaxItems       = 50
	MaxQuantity    = 1000
	MaxIdemKeyLen  = 128
	maxSKULen      = 64
	minCardDigits  = 12
	maxCardDigits  = 19
	cardYearWindow = 20
)

var (
	skuPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	digits         = regexp.MustCompile(`^[0-9]+$`)
	idemKeyPattern = regexp.MustCompile(`^[\x21-\x7e]+$`) // printable ASCII, no spaces
)

// ValidateIdempotencyKey checks the Idempotency-Key header.
func ValidateIdempotencyKey(key string) error {
	switch {
	case key == "":
		return &ValidationError{Field: "Idempotency-Key", Message: "the Idempotency-Key header is required"}
	case len(key) > MaxIdemKeyLen || !idemKeyPattern.MatchString(key):
		return &ValidationError{Field: "Idempotency-Key", Message: fmt.Sprintf("must be 1 to %d printable ASCII characters", MaxIdemKeyLen)}
	}
	return nil
}

// ValidateItems checks the lines of a new order.
func ValidateItems(items []Item) error {
	if len(items) == 0 {
		return &ValidationError{Field: "items", Message: "at least one item is required"}
	}
	if len(items) > MaxItems {
		return &ValidationError{Field: "items", Message: fmt.Sprintf("at most %d items are allowed", MaxItems)}
	}
	seen := map[string]bool{}
	for i, it := range items {
		field := fmt.Sprintf("items[%d]", i)
		if len(it.SKU) == 0 || len(it.SKU) > maxSKULen || !skuPattern.MatchString(it.SKU) {
			return &ValidationError{Field: field + ".sku", Message: fmt.Sprintf("must be 1 to %d letters, digits, '.', '_' or '-'", maxSKULen)}
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return &ValidationError{Field: field + ".quantity", Message: fmt.Sprintf("must be between 1 and %d", MaxQuantity)}
		}
		if seen[it.SKU] {
			return &ValidationError{Field: field + ".sku", Message: "each sku may appear once"}
		}
		seen[it.SKU] = true
	}
	return nil
}

// ValidateCard checks the shape of a card; whether it is valid is the
// payment service's decision.
func ValidateCard(c Card, now time.Time) error {
	n := len(c.Number)
	switch {
	case n < minCardDigits || n > maxCardDigits || !digits.MatchString(c.Number):
		return &ValidationError{Field: "card.number", Message: fmt.Sprintf("must be %d to %d digits", minCardDigits, maxCardDigits)}
	case c.ExpMonth < 1 || c.ExpMonth > 12:
		return &ValidationError{Field: "card.exp_month", Message: "must be between 1 and 12"}
	case c.ExpYear < now.Year() || c.ExpYear > now.Year()+cardYearWindow:
		return &ValidationError{Field: "card.exp_year", Message: "must be a four-digit year, not in the past"}
	case (len(c.CVC) != 3 && len(c.CVC) != 4) || !digits.MatchString(c.CVC):
		return &ValidationError{Field: "card.cvc", Message: "must be 3 or 4 digits"}
	}
	return nil
}

// Fingerprint identifies a create request, to tell a retry (same
// fingerprint) from a different request reusing an idempotency key. The card
// is represented by its last four digits and expiry only: a hash of a whole
// card number could be brute-forced back to it.
func Fingerprint(items []Item, c Card) string {
	sorted := append([]Item(nil), items...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].SKU < sorted[j].SKU })
	var b strings.Builder
	for _, it := range sorted {
		b.WriteString(it.SKU + "\x00" + strconv.Itoa(it.Quantity) + "\x00")
	}
	last4 := c.Number
	if len(last4) > 4 {
		last4 = last4[len(last4)-4:]
	}
	fmt.Fprintf(&b, "card\x00%s\x00%d\x00%d", last4, c.ExpMonth, c.ExpYear)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}
