package domain

import "errors"

// Kind classifies a domain error; the HTTP adapter maps each kind to one
// status code.
type Kind int

// The kinds of errors the payment service reports.
const (
	KindInvalid       Kind = iota + 1 // the request is malformed
	KindUnprocessable                 // well-formed but cannot be carried out (bad card number, expired card)
	KindDeclined                      // the processor refused the charge
	KindTimeout                       // the processor did not answer in time; nothing was captured
	KindConflict                      // the request conflicts with stored state
	KindNotFound                      // no such payment
)

// Error is a failure a caller may see: a kind, a stable snake_case code, a
// message for humans and, for invalid input, the offending field.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is matches errors of the same code, so errors.Is(err, ErrCardDeclined)
// holds whatever the message says.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// The errors of the payment domain. Compare with errors.Is.
var (
	ErrInvalidCardNumber   = &Error{Kind: KindUnprocessable, Code: "invalid_card_number", Message: "the card number is not valid", Field: "card.number"}
	ErrCardExpired         = &Error{Kind: KindUnprocessable, Code: "card_expired", Message: "the card has expired", Field: "card.exp_year"}
	ErrCardDeclined        = &Error{Kind: KindDeclined, Code: "card_declined", Message: "the card was declined"}
	ErrProcessorTimeout    = &Error{Kind: KindTimeout, Code: "timeout", Message: "the payment processor did not answer in time; nothing was charged"}
	ErrIdempotencyReused   = &Error{Kind: KindConflict, Code: "idempotency_key_reused", Message: "this Idempotency-Key was used with a different request body"}
	ErrChargeInProgress    = &Error{Kind: KindConflict, Code: "idempotency_key_in_progress", Message: "a request with this Idempotency-Key is still being processed; retry later"}
	ErrNotFound            = &Error{Kind: KindNotFound, Code: "not_found", Message: "payment not found"}
	ErrNotRefundable       = &Error{Kind: KindConflict, Code: "not_refundable", Message: "only a captured payment can be refunded"}
	ErrAlreadyRefunded     = &Error{Kind: KindConflict, Code: "already_refunded", Message: "the payment has been refunded in full"}
	ErrRefundExceedsCharge = &Error{Kind: KindUnprocessable, Code: "refund_exceeds_charge", Message: "the refund exceeds what is left of the captured amount", Field: "amount_cents"}
)

// Invalid is a KindInvalid error about one request field.
func Invalid(field, message string) *Error {
	return &Error{Kind: KindInvalid, Code: "invalid_request", Message: message, Field: field}
}

// withMessage copies a sentinel error with a more specific message.
func withMessage(e *Error, message string) *Error {
	c := *e
	c.Message = message
	return &c
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
