package domain

import "fmt"

// Code says what kind of failure an Error is. Codes are stable: clients
// (the order service above all) branch on them.
type Code string

// The failures of the inventory service.
const (
	CodeInvalid              Code = "invalid_request"
	CodeNotFound             Code = "not_found"
	CodeInsufficientStock    Code = "insufficient_stock"
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	// CodeMixedCurrencies: a reservation's products are priced in
	// different currencies, so it has no single total.
	CodeMixedCurrencies Code = "mixed_currencies"
	// CodeStockBelowReserved: a new on-hand count lower than what active
	// reservations hold.
	CodeStockBelowReserved Code = "stock_below_reserved"
	// CodeReservationClosed: commit of a released or expired reservation,
	// or release of a committed one.
	CodeReservationClosed Code = "reservation_closed"
)

// Error is a failure the client caused or may act on.
type Error struct {
	Code    Code
	Message string
	Field   string // the request field at fault, when there is one
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is makes errors.Is(err, domain.ErrNotFound) true for every not_found
// error, whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Kinds to compare with errors.Is.
var (
	ErrInvalid              = &Error{Code: CodeInvalid}
	ErrNotFound             = &Error{Code: CodeNotFound}
	ErrInsufficientStock    = &Error{Code: CodeInsufficientStock}
	ErrIdempotencyKeyReused = &Error{Code: CodeIdempotencyKeyReused}
	ErrMixedCurrencies      = &Error{Code: CodeMixedCurrencies}
	ErrStockBelowReserved   = &Error{Code: CodeStockBelowReserved}
	ErrReservationClosed    = &Error{Code: CodeReservationClosed}
)

// Errorf returns an error of the given code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError is an invalid_request error about one field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...), Field: field}
}
