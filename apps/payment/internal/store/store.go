// Package store keeps payments and refunds in PostgreSQL and implements
// domain.Repository. Its migrations are embedded and run at start.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/payment/internal/domain"
	pgstore "github.com/shopstack/shopstack/apps/pkg/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the schema up to date; replicas starting together are safe.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgstore.Migrate(ctx, pool, migrations)
}

// Store is the payment service's database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var _ domain.Repository = (*Store)(nil)

const chargeColumns = `id::text, idempotency_key, request_hash, order_id::text, amount_cents, currency, card_last4,
	card_sealed, status, failure_reason, refunded_cents, created_at, updated_at`

func scanCharge(row pgx.Row) (domain.Charge, error) {
	var c domain.Charge
	var status string
	err := row.Scan(&c.ID, &c.IdempotencyKey, &c.RequestHash, &c.OrderID, &c.AmountCents, &c.Currency, &c.CardLast4,
		&c.SealedCard, &status, &c.FailureReason, &c.RefundedCents, &c.CreatedAt, &c.UpdatedAt)
	c.Status = domain.Status(status)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, notFound(err)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

// ClaimCharge inserts c as pending unless its key is taken. A concurrent
// insert of the same key waits for the other transaction, then finds its
// row, so exactly one request claims each key.
func (s *Store) ClaimCharge(ctx context.Context, c domain.Charge) (domain.Charge, bool, error) {
	var out domain.Charge
	claimed := false
	err := pgstore.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO payments
			(id, idempotency_key, request_hash, order_id, amount_cents, currency, card_last4, card_sealed, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')
			ON CONFLICT (idempotency_key) DO NOTHING`,
			c.ID, c.IdempotencyKey, c.RequestHash, c.OrderID, c.AmountCents, c.Currency, c.CardLast4, c.SealedCard)
		if err != nil {
			return err
		}
		claimed = tag.RowsAffected() == 1
		out, err = scanCharge(tx.QueryRow(ctx, `SELECT `+chargeColumns+` FROM payments WHERE idempotency_key = $1`, c.IdempotencyKey))
		return err
	})
	if err != nil {
		return domain.Charge{}, false, fmt.Errorf("claiming a charge: %w", err)
	}
	return out, claimed, nil
}

// ChargeByKey returns the charge claimed with key.
func (s *Store) ChargeByKey(ctx context.Context, key string) (domain.Charge, error) {
	return scanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeColumns+` FROM payments WHERE idempotency_key = $1`, key))
}

// FinishCharge records the outcome of a pending charge. The status guard
// makes the first outcome final: a charge already finished or abandoned is
// returned as it is.
func (s *Store) FinishCharge(ctx context.Context, id string, status domain.Status, reason string) (domain.Charge, error) {
	c, err := scanCharge(s.pool.QueryRow(ctx, `UPDATE payments SET status = $2, failure_reason = $3, updated_at = now()
		WHERE id = $1 AND status = 'pending' RETURNING `+chargeColumns, id, string(status), reason))
	if errors.Is(err, domain.ErrNotFound) {
		return scanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeColumns+` FROM payments WHERE id = $1`, id))
	}
	return c, err
}

// AbandonCharge fails a charge still pending since before cutoff.
func (s *Store) AbandonCharge(ctx context.Context, id string, cutoff time.Time, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE payments SET status = 'failed', failure_reason = $3, updated_at = now()
		WHERE id = $1 AND status = 'pending' AND updated_at < $2`, id, cutoff, reason)
	return err
}

// Payment returns the payment with id.
func (s *Store) Payment(ctx context.Context, id string) (domain.Payment, error) {
	c, err := scanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeColumns+` FROM payments WHERE id = $1`, id))
	return c.Payment, err
}

// PaymentsByOrder returns every charge made for an order, newest first.
func (s *Store) PaymentsByOrder(ctx context.Context, orderID string) ([]domain.Charge, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+chargeColumns+` FROM payments WHERE order_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, orderID, maxChargesPerOrder)
	if err != nil {
		return nil, fmt.Errorf("listing the payments of order %s: %w", orderID, err)
	}
	charges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Charge, error) { return scanCharge(r) })
	if err != nil {
		return nil, fmt.Errorf("listing the payments of order %s: %w", orderID, err)
	}
	return charges, nil
}

// maxChargesPerOrder bounds the answer of PaymentsByOrder; an order makes
// one charge (one idempotency key), so this is far above any real order.
const maxChargesPerOrder = 100

// refundAttempts bounds the retries of a refund whose key another
// transaction inserted concurrently for another payment.
const refundAttempts = 3

// Refund applies a refund under the payment's row lock; see
// domain.Repository.
func (s *Store) Refund(ctx context.Context, r domain.Refund, decide func(domain.Payment) (int64, error)) (domain.Payment, domain.Refund, bool, error) {
	var (
		p        domain.Payment
		stored   domain.Refund
		replayed bool
		err      error
	)
	for range refundAttempts {
		err = pgstore.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			replayed = false
			c, err := scanCharge(tx.QueryRow(ctx, `SELECT `+chargeColumns+` FROM payments WHERE id = $1 FOR UPDATE`, r.PaymentID))
			if err != nil {
				return err
			}
			p = c.Payment
			err = tx.QueryRow(ctx, `SELECT id::text, payment_id::text, idempotency_key, request_hash, amount_cents, refunded_after
				FROM refunds WHERE idempotency_key = $1`, r.IdempotencyKey).
				Scan(&stored.ID, &stored.PaymentID, &stored.IdempotencyKey, &stored.RequestHash, &stored.AmountCents, &stored.RefundedAfter)
			if err == nil {
				replayed = true
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			amount, err := decide(p)
			if err != nil {
				return err
			}
			stored = r
			stored.AmountCents = amount
			stored.RefundedAfter = p.RefundedCents + amount
			if _, err := tx.Exec(ctx, `INSERT INTO refunds (id, payment_id, idempotency_key, request_hash, amount_cents, refunded_after)
				VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.PaymentID, r.IdempotencyKey, r.RequestHash, amount, stored.RefundedAfter); err != nil {
				return err
			}
			c, err = scanCharge(tx.QueryRow(ctx, `UPDATE payments SET status = 'refunded', refunded_cents = $2, updated_at = now()
				WHERE id = $1 RETURNING `+chargeColumns, r.PaymentID, stored.RefundedAfter))
			p = c.Payment
			return err
		})
		if !errors.Is(err, pgstore.ErrConflict) {
			break
		}
	}
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return domain.Payment{}, domain.Refund{}, false, de
		}
		return domain.Payment{}, domain.Refund{}, false, fmt.Errorf("refunding payment %s: %w", r.PaymentID, err)
	}
	return p, stored, replayed, nil
}
