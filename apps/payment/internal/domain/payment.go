// Package domain holds the payment service's model: payments and their
// states, card validation, typed errors, and the Service that charges and
// refunds exactly once per idempotency key through the ports it defines
// (Repository, Processor, Sealer).
package domain

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Status is the state of a payment.
type Status string

// The states of a payment. A charge starts pending (its idempotency key
// claimed), then becomes captured, declined or failed; a captured payment
// becomes refunded by its first refund.
const (
	StatusPending  Status = "pending"
	StatusCaptured Status = "captured"
	StatusDeclined Status = "declined"
	// StatusFailed: the processor did not answer in time (or failed); the
	// caller was told 504 and the charge is never captured afterwards.
	StatusFailed   Status = "failed"
	StatusRefunded Status = "refunded"
)

// Payment is a charge as callers see it.
type Payment struct {
	ID            string
	OrderID       string
	Status        Status
	AmountCents   int64
	Currency      string
	CardLast4     string
	RefundedCents int64
	CreatedAt     time.Time
}

// Charge is a stored charge attempt: the payment plus what makes it
// idempotent and the sealed card.
type Charge struct {
	Payment
	IdempotencyKey string
	RequestHash    []byte // a keyed MAC of the request, never the request itself
	SealedCard     []byte // the card, encrypted; see package crypto
	FailureReason  string // why a charge failed, for operators
	UpdatedAt      time.Time
}

// Refund is a stored refund.
type Refund struct {
	ID             string
	PaymentID      string
	IdempotencyKey string
	RequestHash    []byte
	AmountCents    int64
	RefundedAfter  int64 // the payment's refunded total once this refund applied
}

// ChargeRequest is what the caller asks to charge.
type ChargeRequest struct {
	OrderID     string
	AmountCents int64
	Currency    string
	Card        Card
}

// MaxAmountCents bounds a single charge (one million in the currency's main
// unit), far above any order and far below overflow.
const MaxAmountCents = 100_000_000

var (
	uuidPattern     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidID reports whether id is a lowercase UUID, the form of every ID.
func ValidID(id string) bool { return uuidPattern.MatchString(id) }

// NewID returns a random (version 4) UUID.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Validate checks the request's form (400) and then the card (422), at now.
func (r ChargeRequest) Validate(now time.Time) error {
	switch {
	case r.OrderID == "":
		return Invalid("order_id", "order_id is required")
	case !ValidID(strings.ToLower(r.OrderID)):
		return Invalid("order_id", "order_id must be a UUID")
	case r.AmountCents <= 0:
		return Invalid("amount_cents", "amount_cents must be a positive number of cents")
	case r.AmountCents > MaxAmountCents:
		return Invalid("amount_cents", fmt.Sprintf("amount_cents must be at most %d", MaxAmountCents))
	case !currencyPattern.MatchString(r.Currency):
		return Invalid("currency", "currency must be an ISO 4217 code such as EUR")
	}
	return r.Card.Validate(now)
}

// MaxKeyLength bounds an Idempotency-Key.
const MaxKeyLength = 255

// ValidateIdempotencyKey requires 1 to 255 visible ASCII characters.
func ValidateIdempotencyKey(key string) error {
	if key == "" {
		return Invalid("Idempotency-Key", "the Idempotency-Key header is required")
	}
	if len(key) > MaxKeyLength {
		return Invalid("Idempotency-Key", fmt.Sprintf("the Idempotency-Key header must be at most %d characters", MaxKeyLength))
	}
	for _, c := range []byte(key) {
		if c < 0x21 || c > 0x7e {
			return Invalid("Idempotency-Key", "the Idempotency-Key header may only hold visible ASCII characters")
		}
	}
	return nil
}
