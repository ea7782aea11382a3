package domain

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies domain errors; the HTTP layer maps each kind to one status.
type Kind string

// The kinds of domain errors.
const (
	KindInvalid            Kind = "invalid"             // the input breaks a rule (400)
	KindConflict           Kind = "conflict"            // the email is taken (409)
	KindInvalidCredentials Kind = "invalid_credentials" // wrong login or password (401 invalid_grant)
	KindLocked             Kind = "locked"              // too many failed logins (429)
	KindNotFound           Kind = "not_found"           // no such user (404)
	KindBusy               Kind = "busy"                // no capacity to hash a password now (503)
)

// Error is a domain rule that refused an operation. Message is safe to show
// to the client.
type Error struct {
	Kind       Kind
	Field      string        // the offending input field, when there is one
	Message    string        // for humans
	RetryAfter time.Duration // KindLocked: how long until the next attempt may succeed
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Kind, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

// Is makes errors.Is(err, ErrEmailTaken) match every error of the same kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind
}

// Sentinels for errors.Is; each matches every error of its kind.
var (
	ErrInvalid            = &Error{Kind: KindInvalid, Message: "invalid input"}
	ErrEmailTaken         = &Error{Kind: KindConflict, Field: "email", Message: "an account with this email already exists"}
	ErrInvalidCredentials = &Error{Kind: KindInvalidCredentials, Message: "the username or password is wrong"}
	ErrLocked             = &Error{Kind: KindLocked, Message: "too many failed logins for this account"}
	ErrUserNotFound       = &Error{Kind: KindNotFound, Message: "the user does not exist"}
	ErrBusy               = &Error{Kind: KindBusy, Message: "too many logins at once, try again shortly"}
)

// Invalid returns an invalid-input error about field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Locked returns the error of a locked account.
func Locked(retryAfter time.Duration) *Error {
	return &Error{Kind: KindLocked, Message: ErrLocked.Message + ", try again later", RetryAfter: retryAfter}
}

// KindOf is the kind of a domain error in err's chain, or "".
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}
