package domain

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// Repository stores charges and refunds. Implementations must claim an
// idempotency key atomically across every replica sharing the database.
type Repository interface {
	// ClaimCharge stores c as pending in a transaction of its own. When the
	// key is already taken it stores nothing and returns the existing
	// charge with claimed false.
	ClaimCharge(ctx context.Context, c Charge) (existing Charge, claimed bool, err error)
	// ChargeByKey returns the charge claimed with key.
	ChargeByKey(ctx context.Context, key string) (Charge, error)
	// FinishCharge moves a pending charge to its outcome and returns it;
	// a charge that is no longer pending is returned unchanged.
	FinishCharge(ctx context.Context, id string, status Status, reason string) (Charge, error)
	// AbandonCharge marks a charge failed if it is still pending and was
	// last updated before cutoff: its owner is gone.
	AbandonCharge(ctx context.Context, id string, cutoff time.Time, reason string) error
	// Payment returns the payment with id.
	Payment(ctx context.Context, id string) (Payment, error)
	// PaymentsByOrder returns the charges made for an order, newest first
	// (none: an empty list, not an error).
	PaymentsByOrder(ctx context.Context, orderID string) ([]Charge, error)
	// Refund applies r to its payment in one transaction, holding the
	// payment's row lock: if a refund with r's key exists it returns that
	// refund and the payment unchanged (replayed true); otherwise it calls
	// decide with the locked payment, records a refund of the amount decide
	// returns and adds it to the payment. An error from decide stores
	// nothing.
	Refund(ctx context.Context, r Refund, decide func(Payment) (int64, error)) (p Payment, stored Refund, replayed bool, err error)
}

// Processor charges cards: nil means captured, ErrCardDeclined declined,
// ErrInvalidCardNumber refused; an error of ctx means no answer in time.
type Processor interface {
	Charge(ctx context.Context, card Card, amountCents int64, currency string) error
}

// Sealer encrypts card data and authenticates requests with the service's
// key.
type Sealer interface {
	// Seal encrypts plaintext bound to aad (the payment ID).
	Seal(plaintext, aad []byte) ([]byte, error)
	// MAC is a keyed hash of a request: stored with the idempotency key, it
	// tells a repeated request from a different one without storing (or
	// making guessable) the card number it holds.
	MAC(parts ...[]byte) []byte
}

// Service charges and refunds, exactly once per idempotency key.
type Service struct {
	Repo      Repository
	Processor Processor
	Sealer    Sealer
	// ProcessorTimeout bounds a charge at the processor. It must be shorter
	// than the callers' own timeout, so they get the 504 and not a dropped
	// connection.
	ProcessorTimeout time.Duration
	// StaleAfter is when a pending charge whose owner has not finished it
	// (a crashed replica) is marked failed; well above ProcessorTimeout.
	StaleAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Charges counts charges by recorded outcome (captured, declined,
	// failed); nil counts nothing.
	Charges *prometheus.CounterVec
}

// Defaults of Service.
const (
	DefaultProcessorTimeout = 2 * time.Second
	finishAttempts          = 5
	finishTimeout           = 5 * time.Second
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) processorTimeout() time.Duration {
	if s.ProcessorTimeout > 0 {
		return s.ProcessorTimeout
	}
	return DefaultProcessorTimeout
}

func (s *Service) staleAfter() time.Duration {
	if s.StaleAfter > 0 {
		return s.StaleAfter
	}
	return 3*s.processorTimeout() + 10*time.Second
}

// sealedCard is what is encrypted: never the CVC, which must not be kept
// after the charge.
type sealedCard struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

// Charge charges req once for key. A repeated request (same key, same body)
// gets the first answer: the payment as it was captured, or the same error;
// the same key with another body is refused. The answer for a claimed key
// is final once given: a processor timeout is recorded as failed before the
// caller hears 504, so it can never turn into a capture.
func (s *Service) Charge(ctx context.Context, key string, req ChargeRequest) (Payment, error) {
	if err := ValidateIdempotencyKey(key); err != nil {
		return Payment{}, err
	}
	req.OrderID = strings.ToLower(req.OrderID)
	if err := req.Validate(s.now()); err != nil {
		return Payment{}, err
	}
	hash := s.Sealer.MAC([]byte("charge"), []byte(req.OrderID), []byte(strconv.FormatInt(req.AmountCents, 10)),
		[]byte(req.Currency), []byte(req.Card.Number), []byte(strconv.Itoa(req.Card.ExpMonth)),
		[]byte(strconv.Itoa(req.Card.ExpYear)), []byte(req.Card.CVC))

	id := NewID()
	plain, err := json.Marshal(sealedCard{Number: req.Card.Number, ExpMonth: req.Card.ExpMonth, ExpYear: req.Card.ExpYear})
	if err != nil {
		return Payment{}, err
	}
	sealed, err := s.Sealer.Seal(plain, []byte(id))
	if err != nil {
		return Payment{}, fmt.Errorf("sealing the card: %w", err)
	}
	existing, claimed, err := s.Repo.ClaimCharge(ctx, Charge{
		Payment: Payment{
			ID: id, OrderID: req.OrderID, Status: StatusPending, AmountCents: req.AmountCents,
			Currency: req.Currency, CardLast4: req.Card.Last4(),
		},
		IdempotencyKey: key, RequestHash: hash, SealedCard: sealed,
	})
	if err != nil {
		return Payment{}, fmt.Errorf("claiming the idempotency key: %w", err)
	}
	if !claimed {
		return s.awaitOutcome(ctx, existing, hash)
	}
	return s.process(ctx, id, req)
}

// process runs a claimed charge to its outcome. Neither the processor call
// nor the recording of its outcome depends on the caller staying connected:
// an outcome must always be recorded.
func (s *Service) process(ctx context.Context, id string, req ChargeRequest) (Payment, error) {
	detached := context.WithoutCancel(ctx)
	pctx, cancel := context.WithTimeout(detached, s.processorTimeout())
	perr := s.Processor.Charge(pctx, req.Card, req.AmountCents, req.Currency)
	cancel()

	status, reason := StatusCaptured, ""
	switch {
	case perr == nil:
	case errors.Is(perr, ErrCardDeclined):
		status, reason = StatusDeclined, "declined by the processor"
	case errors.Is(perr, context.DeadlineExceeded):
		status, reason = StatusFailed, "processor_timeout"
	default:
		status, reason = StatusFailed, "processor_error"
		telemetry.Logger(ctx).WarnContext(ctx, "processor failed", slog.String("payment_id", id), slog.Any("error", perr))
	}

	var (
		c   Charge
		err error
	)
	for attempt := 1; attempt <= finishAttempts; attempt++ {
		fctx, cancel := context.WithTimeout(detached, finishTimeout)
		c, err = s.Repo.FinishCharge(fctx, id, status, reason)
		cancel()
		if err == nil {
			break
		}
		telemetry.Logger(ctx).ErrorContext(ctx, "recording a charge outcome failed",
			slog.String("payment_id", id), slog.String("status", string(status)), slog.Int("attempt", attempt), slog.Any("error", err))
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
	if err != nil {
		// The row stays pending; a retry with the same key waits for it
		// and, once it is stale, gets it marked failed.
		return Payment{}, fmt.Errorf("recording the outcome of payment %s: %w", id, err)
	}
	if c.Status != status {
		telemetry.Logger(ctx).ErrorContext(ctx, "charge outcome arrived after the charge was abandoned",
			slog.String("payment_id", id), slog.String("outcome", string(status)), slog.String("recorded", string(c.Status)))
	}
	if s.Charges != nil {
		s.Charges.WithLabelValues(string(c.Status)).Inc()
	}
	return answer(c)
}

// awaitOutcome answers a request whose key another request (perhaps on
// another replica) claimed: once the first request's outcome is recorded,
// with that outcome. The wait is bounded by the processor timeout; a
// charge left pending by a replica that died is marked failed.
func (s *Service) awaitOutcome(ctx context.Context, c Charge, hash []byte) (Payment, error) {
	if !hmac.Equal(c.RequestHash, hash) {
		return Payment{}, ErrIdempotencyReused
	}
	deadline := s.now().Add(s.processorTimeout() + time.Second)
	wait := 10 * time.Millisecond
	for range 500 {
		if c.Status != StatusPending {
			return answer(c)
		}
		if cutoff := s.now().Add(-s.staleAfter()); c.UpdatedAt.Before(cutoff) {
			if err := s.Repo.AbandonCharge(ctx, c.ID, cutoff, "abandoned: the replica handling it stopped"); err != nil {
				return Payment{}, err
			}
		} else if !s.now().Before(deadline) {
			return Payment{}, ErrChargeInProgress
		} else {
			select {
			case <-ctx.Done():
				return Payment{}, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 200*time.Millisecond)
		}
		var err error
		if c, err = s.Repo.ChargeByKey(ctx, c.IdempotencyKey); err != nil {
			return Payment{}, err
		}
	}
	return Payment{}, ErrChargeInProgress
}

// answer is what a charge request gets once the charge has an outcome: the
// first answer, so a later refund does not change what a retry sees.
func answer(c Charge) (Payment, error) {
	p := c.Payment
	switch c.Status {
	case StatusCaptured, StatusRefunded:
		p.Status, p.RefundedCents = StatusCaptured, 0
		return p, nil
	case StatusDeclined:
		return p, ErrCardDeclined
	case StatusFailed:
		return p, ErrProcessorTimeout
	}
	return Payment{}, ErrChargeInProgress
}

// Get returns a payment as it is now.
func (s *Service) Get(ctx context.Context, id string) (Payment, error) {
	id = strings.ToLower(id)
	if !ValidID(id) {
		return Payment{}, ErrNotFound
	}
	return s.Repo.Payment(ctx, id)
}

// ByOrder returns every payment made for an order, newest first: usually
// none or one. A charge still pending after StaleAfter (the replica handling
// it stopped) is marked failed first, as a retry of that charge would, so a
// pending answer always means a charge still in flight.
func (s *Service) ByOrder(ctx context.Context, orderID string) ([]Payment, error) {
	orderID = strings.ToLower(orderID)
	switch {
	case orderID == "":
		return nil, Invalid("order_id", "order_id is required")
	case !ValidID(orderID):
		return nil, Invalid("order_id", "order_id must be a UUID")
	}
	charges, err := s.Repo.PaymentsByOrder(ctx, orderID)
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-s.staleAfter())
	abandoned := false
	for _, c := range charges {
		if c.Status == StatusPending && c.UpdatedAt.Before(cutoff) {
			if err := s.Repo.AbandonCharge(ctx, c.ID, cutoff, "abandoned: the replica handling it stopped"); err != nil {
				return nil, err
			}
			abandoned = true
		}
	}
	if abandoned {
		if charges, err = s.Repo.PaymentsByOrder(ctx, orderID); err != nil {
			return nil, err
		}
	}
	out := make([]Payment, 0, len(charges))
	for _, c := range charges {
		out = append(out, c.Payment)
	}
	return out, nil
}

// Refund refunds amountCents (nil: all that is left) of a captured payment,
// once for key. A repeated request gets the payment as that refund left it.
func (s *Service) Refund(ctx context.Context, key, paymentID string, amountCents *int64) (Payment, error) {
	if err := ValidateIdempotencyKey(key); err != nil {
		return Payment{}, err
	}
	paymentID = strings.ToLower(paymentID)
	if !ValidID(paymentID) {
		return Payment{}, ErrNotFound
	}
	requested := "all"
	if amountCents != nil {
		if *amountCents <= 0 {
			return Payment{}, Invalid("amount_cents", "amount_cents must be a positive number of cents")
		}
		requested = strconv.FormatInt(*amountCents, 10)
	}
	r := Refund{
		ID: NewID(), PaymentID: paymentID, IdempotencyKey: key,
		RequestHash: s.Sealer.MAC([]byte("refund"), []byte(paymentID), []byte(requested)),
	}
	p, stored, replayed, err := s.Repo.Refund(ctx, r, func(p Payment) (int64, error) {
		return refundAmount(p, amountCents)
	})
	if err != nil {
		return Payment{}, err
	}
	if replayed {
		if stored.PaymentID != paymentID || !hmac.Equal(stored.RequestHash, r.RequestHash) {
			return Payment{}, ErrIdempotencyReused
		}
		p.Status, p.RefundedCents = StatusRefunded, stored.RefundedAfter
	}
	return p, nil
}

// refundAmount decides how much a refund takes back from p.
func refundAmount(p Payment, requested *int64) (int64, error) {
	if p.Status != StatusCaptured && p.Status != StatusRefunded {
		return 0, withMessage(ErrNotRefundable, fmt.Sprintf("payment %s is %s; only a captured payment can be refunded", p.ID, p.Status))
	}
	left := p.AmountCents - p.RefundedCents
	if left <= 0 {
		return 0, ErrAlreadyRefunded
	}
	if requested == nil {
		return left, nil
	}
	if *requested > left {
		return 0, withMessage(ErrRefundExceedsCharge, fmt.Sprintf("amount_cents %d exceeds the %d cents left to refund", *requested, left))
	}
	return *requested, nil
}

// NewChargesCounter is the payment_charges_total metric, registered on reg.
func NewChargesCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_charges_total",
		Help: "Charges by recorded outcome: captured, declined, failed (processor timeout or error).",
	}, []string{"outcome"})
	reg.MustRegister(c)
	return c
}
