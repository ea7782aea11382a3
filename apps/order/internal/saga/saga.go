// Package saga runs an order through reserve stock -> charge -> commit the
// reservation -> confirm, and undoes what was done when a step fails:
// release the reservation, refund the charge. Each step's state is written
// to the database before and after its call, so a process that dies half-way
// leaves enough behind for Recover to finish or undo the order.
package saga

import (
	"context"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
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
	// Finished counts orders reaching a final state by status and reason;
	// nil counts nothing.
	Finished *prometheus.CounterVec
}

// NewFinishedCounter is the orders_finished_total metric, registered on reg.
func NewFinishedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orders_finished_total",
		Help: "Orders that reached a final state, by status (confirmed, failed) and failure reason.",
	}, []string{"status", "reason"})
	reg.MustRegister(c)
	return c
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
		return s.fail(ctx, o, reasonFor(err), "reserve", err)
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
		return s.fail(ctx, o, reasonFor(err), "charge", err)
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
		return s.fail(ctx, o, domain.ReasonCommitFailed, "commit", err)
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
// with an order.failed event. While payment cannot tell whether a charge
// whose answer was lost took place, the order is failed (nothing more
// will be attempted for it) but not compensated, and its event waits:
// Recover asks payment again and writes the event once the charge is
// settled, so an order.failed event never leaves a charge in doubt.
func (s *Saga) fail(ctx context.Context, o domain.Order, reason, step string, cause error) (domain.Order, error) {
	return s.failRefunded(ctx, o, reason, step, cause, false)
}

// failRefunded is fail for an order whose charge (o.PaymentID) has been
// refunded already.
func (s *Saga) failRefunded(ctx context.Context, o domain.Order, reason, step string, cause error, refunded bool) (domain.Order, error) {
	s.log.WarnContext(ctx, "order failed", slog.String("order_id", o.ID), slog.String("step", step),
		slog.String("reason", reason), slog.Any("error", cause))
	o.Status, o.Reason = domain.StatusFailed, reason
	o.Compensated = s.undo(ctx, &o, refunded)
	detail := reason
	if cause != nil {
		detail = cause.Error()
	}
	var event *store.Event
	if !o.ChargeUnknown {
		event = &store.Event{Type: EventFailed, Payload: eventPayload(o)}
	}
	if err := s.save(ctx, o, step, "failed", detail, event); err != nil {
		return o, err
	}
	if event != nil {
		s.cfg.Notify()
	}
	return o, nil
}

// undo releases the order's reservation and refunds its charge (unless
// refunded says that is done). It reports whether everything is undone;
// what is not is retried by Recover.
func (s *Saga) undo(ctx context.Context, o *domain.Order, refunded bool) bool {
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

	// A charge that got no answer is looked up: payment tells whether it
	// took place.
	if s.settleCharge(ctx, o) != chargeSettled {
		done = false
	}
	if o.PaymentID != "" && !refunded && !s.refund(ctx, o) {
		done = false
	}
	return done
}

// refund gives an order's charge back, idempotently (the key is derived
// from the order ID), and reports whether it is given back.
func (s *Saga) refund(ctx context.Context, o *domain.Order) bool {
	_, err := s.cfg.Payment.Refund(ctx, o.ID, o.PaymentID)
	if err != nil && !errors.Is(err, clients.ErrAlreadyRefunded) {
		s.log.WarnContext(ctx, "could not refund the charge", slog.String("order_id", o.ID), slog.Any("error", err))
		return false
	}
	s.journal(ctx, o.ID, "refund", "succeeded", o.PaymentID)
	return true
}

// chargeState is what is known of an order's charge.
type chargeState int

const (
	// chargeSettled: o.PaymentID names the charge, or there is none.
	chargeSettled chargeState = iota
	// chargePending: payment is still processing the charge.
	chargePending
	// chargeUnreachable: payment could not be asked.
	chargeUnreachable
)

func (c chargeState) String() string {
	switch c {
	case chargePending:
		return "the charge is still pending at payment"
	case chargeUnreachable:
		return "payment could not be asked about the charge"
	}
	return "settled"
}

// Bounds of the wait for a pending charge within one call of settleCharge;
// a charge still pending after them is left for a later recovery pass.
const (
	pendingPolls     = 3
	pendingPollPause = 250 * time.Millisecond
)

// settleCharge finds out, when a charge call got no answer
// (o.ChargeUnknown), whether the charge took place, by asking payment for
// the order's payments: a captured (or refunded) one becomes o.PaymentID,
// none (or only declined or failed ones) means nothing was charged. Either
// clears o.ChargeUnknown. A pending one is asked about again a few times;
// payment itself fails a charge left pending by a replica that stopped, so
// the wait always ends.
func (s *Saga) settleCharge(ctx context.Context, o *domain.Order) chargeState {
	if o.PaymentID != "" || !o.ChargeUnknown {
		o.ChargeUnknown = false
		return chargeSettled
	}
	for poll := 1; ; poll++ {
		payments, err := s.cfg.Payment.ByOrder(ctx, o.ID)
		if err != nil {
			s.log.WarnContext(ctx, "could not ask payment whether the order was charged; retrying later",
				slog.String("order_id", o.ID), slog.Any("error", err))
			return chargeUnreachable
		}
		charged, pending := "", false
		for _, p := range payments { // newest first
			switch p.Status {
			case clients.ChargePending:
				pending = true
			case clients.ChargeCaptured, clients.ChargeRefunded:
				if charged == "" {
					charged = p.ID
				} else {
					s.log.ErrorContext(ctx, "more than one charge for an order", slog.String("order_id", o.ID),
						slog.String("payment_id", p.ID), slog.String("refunding", charged))
				}
			}
		}
		switch {
		case pending && charged == "":
			if poll >= pendingPolls {
				s.log.InfoContext(ctx, "the order's charge is still pending at payment; retrying later", slog.String("order_id", o.ID))
				return chargePending
			}
			select {
			case <-ctx.Done():
				return chargePending
			case <-time.After(time.Duration(poll) * pendingPollPause):
			}
			continue
		case charged != "":
			o.PaymentID = charged
			s.journal(ctx, o.ID, "charge", "found", charged)
		default:
			s.journal(ctx, o.ID, "charge", "none", "payment holds no captured charge for the order")
		}
		o.ChargeUnknown = false
		return chargeSettled
	}
}

// save persists the order's state with a journal step and, for a final
// state, its event; a final state saved is counted once, as its event is
// written once.
func (s *Saga) save(ctx context.Context, o domain.Order, step, outcome, detail string, event *store.Event) error {
	if err := s.cfg.Store.Save(ctx, o, store.Step{Name: step, Outcome: outcome, Detail: detail}, event, s.cfg.Lease); err != nil {
		return err
	}
	if event != nil && s.cfg.Finished != nil {
		s.cfg.Finished.WithLabelValues(string(o.Status), o.Reason).Inc()
	}
	return nil
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
	case clients.Rejected(err):
		return domain.ReasonRejected
	}
	return domain.ReasonUnavailable
}

// Event is the payload of order events on the stream.
type Event struct {
	OrderID    string        `json:"order_id"`
	CustomerID string        `json:"customer_id"`
	Status     domain.Status `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Items      []domain.Item `json:"items"`
	TotalCents int64         `json:"total_cents"`
	Currency   string        `json:"currency"`
	PaymentID  string        `json:"payment_id,omitempty"`
	At         time.Time     `json:"at"`
}

func eventPayload(o domain.Order) Event {
	return Event{
		OrderID: o.ID, CustomerID: o.CustomerID, Status: o.Status, Reason: o.Reason, Items: o.Items,
		TotalCents: o.TotalCents, Currency: o.Currency, PaymentID: o.PaymentID, At: time.Now().UTC(),
	}
}
