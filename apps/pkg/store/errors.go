package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Typed errors for the services to map to responses. Errors returned by
// InTx, or passed through MapError, match them with errors.Is and still wrap
// the original *pgconn.PgError.
var (
	// ErrConflict: a unique or exclusion constraint refused the write; the
	// thing already exists (HTTP 409).
	ErrConflict = errors.New("conflict")
	// ErrConstraint: a check, foreign-key or not-null constraint refused
	// the write; the input is invalid or refers to something missing
	// (HTTP 422 or 409, by the service's judgement).
	ErrConstraint = errors.New("constraint violation")
	// ErrNotFound: a query that needs a row found none (HTTP 404).
	ErrNotFound = errors.New("not found")
)

// ConstraintError is a write refused by a database constraint.
type ConstraintError struct {
	// Kind is ErrConflict or ErrConstraint.
	Kind error
	// Constraint is the violated constraint's name, e.g.
	// "reservations_quantity_check": services match on it to say which rule
	// was broken.
	Constraint string
	Table      string
	Column     string
	// Err is the original *pgconn.PgError.
	Err error
}

func (e *ConstraintError) Error() string {
	if e.Constraint != "" {
		return fmt.Sprintf("%v: %s: %v", e.Kind, e.Constraint, e.Err)
	}
	return fmt.Sprintf("%v: %v", e.Kind, e.Err)
}

// Unwrap makes errors.Is(err, ErrConflict) and errors.As(err, **pgconn.PgError) work.
func (e *ConstraintError) Unwrap() []error { return []error{e.Kind, e.Err} }

// MapError turns constraint violations into *ConstraintError (matching
// ErrConflict or ErrConstraint) and pgx.ErrNoRows into an error matching
// ErrNotFound; any other error, and nil, is returned unchanged.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	var ce *ConstraintError
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	var kind error
	switch pgErr.Code {
	case "23505", "23P01": // unique_violation, exclusion_violation
		kind = ErrConflict
	case "23514", "23503", "23502": // check_violation, foreign_key_violation, not_null_violation
		kind = ErrConstraint
	default:
		return err
	}
	return &ConstraintError{Kind: kind, Constraint: pgErr.ConstraintName, Table: pgErr.TableName, Column: pgErr.ColumnName, Err: err}
}

// ConstraintName is the name of the constraint err violated, or "".
func ConstraintName(err error) string {
	var ce *ConstraintError
	if errors.As(err, &ce) {
		return ce.Constraint
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}
