// Package saga runs an order through reserve stock -> charge -> commit the
// reservation -> confirm, and undoes what was done when a step fails:
// release the reservation, refund the charge. Each step's state is written
// to the database before and after its call, so a process that dies half-way
// leaves enough behind for Recover to finish or undo the order.
package saga

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/shopstack/shopstack/apps/order/internal/clients"
	"github.com/shopstack/shopstack/apps/order/internal/domain"
	"github.com/shopstack/shopstack/apps/order/internal/store"
	"github.com/shopstack/shopstack/apps/pkg/breaker"
)

// Events written to the outbox.
const (
	EventConfirmed = "order.confirmed"
	EventFailed    = "order.failed"
)

// Defaults of Config.
const (
	DefaultReservationTTL = 15 * time.Minute
	DefaultLease          = 2 * time.Minute
	DefaultCommitAttempts = 3
)

// Config wires a Saga.
type Config struct {
	Store     *store.Store
	Inventory *clients.Inventory
	Payment   *clients.Payment
	// ReservationTTL is how long inventory holds stock for an order that
	// is not committed: the safety net when neither commit nor release
	// arrives.
	ReservationTTL time.Duration
	// Lease is how long one process owns a running saga; after it the
	// recovery loop of any replica may take over. It must be longer than
	// a saga can take (every call is bounded by its client's timeout).
	Lease time.Duration
	// CommitAttempts bounds the retries of the (idempotent) commit while
	// inventory is unavailable.
	CommitAttempts int
	// Notify is called after an event was written to the outbox, to wake
	// the relay; nil is fine.
	Notify func()
	Logger *slog.Logger
}

// Saga runs orders. It is safe for concurrent use.
type Saga struct {
	cfg Config
	log *slog.Logger
}

// New returns a Saga.
func New(cfg Config) *Saga {
	if cfg.ReservationTTL <= 0 {
		cfg.ReservationTTL = DefaultReservationTTL
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.CommitAttempts <= 0 {
		cfg.CommitAttempts = DefaultCommitAttempts
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Saga{cfg: cfg, log: cfg.Logger}
}

// Lease is the configured lease, for creating orders.
func (s *Saga) Lease() time.Duration { return s.cfg.Lease }

// Run drives a new (pending) order to confirmed or failed and returns it.
// The card is used for the charge and never stored. An error means the
// order's state could not be written; the recovery loop will finish it.
func (s *Saga) Run(ctx context.Context, o domain.Order, card domain.Card) (domain.Order, error) {
	// The client going away must not stop a saga half-way.
	ctx = context.WithoutCancel(ctx)

	// Reserve. The flag goes to the database first: if we die during the
	// call, recovery knows a reservation may exist.
	o.ReserveUnknown = true
	if err := s.save(ctx, o, "reserve", "started", "", nil); err != nil {
		return o, err
	}
	res, err := s.cfg.Inventory.Reserve(ctx, o.ID, o.Items, s.cfg.ReservationTTL)
	if err != nil {
		o.ReserveUnknown = clients.Ambiguous(err)
		return s.fail(ctx, o, &card, reasonFor(err), "reserve", err)
	}
	o.ReserveUnknown = false
	o.Status, o.ReservationID, o.TotalCents, o.Currency = domain.StatusReserved, res.ID, res.TotalCents, res.Currency

	// Charge.
	o.ChargeUnknown = true
	if err := s.save(ctx, o, "reserve", "succeeded", res.ID, nil); err != nil {
		return o, err
	}
	charge, err := s.cfg.Payment.Charge(ctx, o.ID, o.TotalCents, o.Currency, card)
	if err != nil {
		o.ChargeUnknown = clients.Ambiguous(err)
		return s.fail(ctx, o, &card, reasonFor(err), "charge", err)
	}
	o.ChargeUnknown = false
	o.Status, o.PaymentID = domain.StatusCharged, charge.ID
	if err := s.save(ctx, o, "charge", "succeeded", charge.ID, nil); err != nil {
		return o, err
	}
	return s.complete(ctx, o)
}

// complete commits the reservation of a charged order and confirms it, or
// undoes the order when the commit fails.
func (s *Saga) complete(ctx context.Context, o domain.Order) (domain.Order, error) {
	var err error
	for attempt := 1; attempt <= s.cfg.CommitAttempts; attempt++ {
		_, err = s.cfg.Inventory.Commit(ctx, o.ReservationID)
		if err == nil || !clients.Unavailable(err) || errors.Is(err, breaker.ErrOpen) {
			break
		}
		if attempt < s.cfg.CommitAttempts {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
	}
	if err != nil && clients.Ambiguous(err) {
		// The commit may have happened. Releasing tells: a committed
		// reservation refuses to be released, and then the sale stands.
		if _, rerr := s.cfg.Inventory.Release(ctx, o.ReservationID); errors.Is(rerr, clients.ErrReservationClosed) {
			err = nil
		}
	}
	if err != nil {
		return s.fail(ctx, o, nil, domain.ReasonCommitFailed, "commit", err)
	}
	o.Status = domain.StatusConfirmed
	if err := s.save(ctx, o, "commit", "succeeded", o.ReservationID, &store.Event{Type: EventConfirmed, Payload: eventPayload(o)}); err != nil {
		return o, err
	}
	s.cfg.Notify()
	s.log.InfoContext(ctx, "order confirmed", slog.String("order_id", o.ID), slog.Int64("total_cents", o.TotalCents))
	return o, nil
}

// fail undoes what the order holds and records it as failed with reason,
// with an order.failed event. card is nil when it is no longer known (in
// recovery).
func (s *Saga) fail(ctx context.Context, o domain.Order, card *domain.Card, reason, step string, cause error) (domain.Order, error) {
	s.log.WarnContext(ctx, "order failed", slog.String("order_id", o.ID), slog.String("step", step),
		slog.String("reason", reason), slog.Any("error", cause))
	o.Status, o.Reason = domain.StatusFailed, reason
	o.Compensated = s.undo(ctx, &o, card)
	detail := reason
	if cause != nil {
		detail = cause.Error()
	}
	if err := s.save(ctx, o, step, "failed", detail, &store.Event{Type: EventFailed, Payload: eventPayload(o)}); err != nil {
		return o, err
	}
	s.cfg.Notify()
	return o, nil
}

// undo releases the order's reservation and refunds its charge. It reports
// whether everything is undone; what is not is retried by Recover.
func (s *Saga) undo(ctx context.Context, o *domain.Order, card *domain.Card) bool {
	done := true

	// A reserve call that got no answer may have reserved: asking again
	// with the same idempotency key returns that reservation (or makes
	// one), which is then released.
	if o.ReservationID == "" && o.ReserveUnknown {
		res, err := s.cfg.Inventory.Reserve(ctx, o.ID, o.Items, s.cfg.ReservationTTL)
		switch {
		case err == nil:
			o.ReservationID = res.ID
			o.ReserveUnknown = false
		case errors.Is(err, clients.ErrInsufficientStock), errors.Is(err, clients.ErrUnknownSKU):
			o.ReserveUnknown = false // nothing is held
		default:
			s.log.WarnContext(ctx, "could not find out whether stock was reserved", slog.String("order_id", o.ID), slog.Any("error", err))
			done = false
		}
	}
	if o.ReservationID != "" {
		_, err := s.cfg.Inventory.Release(ctx, o.ReservationID)
		if err != nil && !errors.Is(err, clients.ErrReservationClosed) {
			s.log.WarnContext(ctx, "could not release the reservation", slog.String("order_id", o.ID), slog.Any("error", err))
			done = false
		} else {
			s.journal(ctx, o.ID, "release", "succeeded", o.ReservationID)
		}
	}

	// A charge that got no answer is asked again with the same
	// idempotency key, which returns the first charge if there was one.
	if o.PaymentID == "" && o.ChargeUnknown {
		if card == nil {
			// Without the card the charge cannot be asked about again. The
			// flag stays in the order and its order.failed event for
			// reconciliation with payment.
			s.log.ErrorContext(ctx, "the outcome of a charge is unknown; reconcile with payment",
				slog.String("order_id", o.ID), slog.String("idempotency_key", clients.ChargeKey(o.ID)))
		} else {
			charge, err := s.cfg.Payment.Charge(ctx, o.ID, o.TotalCents, o.Currency, *card)
			switch {
			case err == nil:
				o.PaymentID, o.ChargeUnknown = charge.ID, false
			case errors.Is(err, clients.ErrCardDeclined), errors.Is(err, clients.ErrCardInvalid):
				o.ChargeUnknown = false
			default:
				s.log.ErrorContext(ctx, "the outcome of a charge is unknown; reconcile with payment",
					slog.String("order_id", o.ID), slog.String("idempotency_key", clients.ChargeKey(o.ID)), slog.Any("error", err))
			}
		}
	}
	if o.PaymentID != "" {
		if _, err := s.cfg.Payment.Refund(ctx, o.ID, o.PaymentID); err != nil {
			s.log.WarnContext(ctx, "could not refund the charge", slog.String("order_id", o.ID), slog.Any("error", err))
			done = false
		} else {
			s.journal(ctx, o.ID, "refund", "succeeded", o.PaymentID)
		}
	}
	return done
}

func (s *Saga) save(ctx context.Context, o domain.Order, step, outcome, detail string, event *store.Event) error {
	return s.cfg.Store.Save(ctx, o, store.Step{Name: step, Outcome: outcome, Detail: detail}, event, s.cfg.Lease)
}

// journal records a compensation step; a failure to record it only loses
// history, the order's own state says what is left to do.
func (s *Saga) journal(ctx context.Context, orderID, step, outcome, detail string) {
	if err := s.cfg.Store.AppendStep(ctx, orderID, store.Step{Name: step, Outcome: outcome, Detail: detail}); err != nil {
		s.log.WarnContext(ctx, "could not write the saga journal", slog.String("order_id", orderID), slog.Any("error", err))
	}
}

// reasonFor names the failure of a call for the order's reason.
func reasonFor(err error) string {
	switch {
	case errors.Is(err, clients.ErrInsufficientStock):
		return domain.ReasonInsufficientStock
	case errors.Is(err, clients.ErrUnknownSKU):
		return domain.ReasonUnknownSKU
	case errors.Is(err, clients.ErrCardDeclined):
		return domain.ReasonCardDeclined
	case errors.Is(err, clients.ErrCardInvalid):
		return domain.ReasonCardInvalid
	}
	return domain.ReasonUnavailable
}

// Event is the payload of order events on the stream.
type Event struct {
	OrderID       string        `json:"order_id"`
	CustomerID    string        `json:"customer_id"`
	Status        domain.Status `json:"status"`
	Reason        string        `json:"reason,omitempty"`
	Items         []domain.Item `json:"items"`
	TotalCents    int64         `json:"total_cents"`
	Currency      string        `json:"currency"`
	PaymentID     string        `json:"payment_id,omitempty"`
	ChargeUnknown bool          `json:"charge_unknown,omitempty"`
	At            time.Time     `json:"at"`
}

func eventPayload(o domain.Order) Event {
	return Event{
		OrderID: o.ID, CustomerID: o.CustomerID, Status: o.Status, Reason: o.Reason, Items: o.Items,
		TotalCents: o.TotalCents, Currency: o.Currency, PaymentID: o.PaymentID, ChargeUnknown: o.ChargeUnknown,
		At: time.Now().UTC(),
	}
}
