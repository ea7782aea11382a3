// Package store keeps orders, their items, the saga journal and the outbox
// in PostgreSQL. Every change of an order's state is written together with
// its journal entry and, for terminal states, its outbox event, in one
// transaction.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/order/internal/domain"
	pkgstore "github.com/shopstack/shopstack/apps/pkg/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the order service's migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pkgstore.Migrate(ctx, pool, migrations)
}

// Store is the order service's database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the underlying pool, for the outbox relay and readiness.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Step is one entry of the saga journal.
type Step struct {
	Name    string // reserve, charge, commit, release, refund, confirm, fail
	Outcome string // started, succeeded, failed, unknown
	Detail  string
}

// Event is an outbox entry.
type Event struct {
	Type    string // order.confirmed, order.failed
	Payload any
}

const orderColumns = `id::text, customer_id, idempotency_key, fingerprint, status, reason, total_cents, currency,
	reservation_id, payment_id, reserve_unknown, charge_unknown, compensated, created_at, updated_at`

func scanOrder(row pgx.Row) (domain.Order, error) {
	var o domain.Order
	var status string
	err := row.Scan(&o.ID, &o.CustomerID, &o.IdempotencyKey, &o.Fingerprint, &status, &o.Reason, &o.TotalCents,
		&o.Currency, &o.ReservationID, &o.PaymentID, &o.ReserveUnknown, &o.ChargeUnknown, &o.Compensated,
		&o.CreatedAt, &o.UpdatedAt)
	o.Status = domain.Status(status)
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, err
}

// Create stores a new pending order leased for lease, or, when the customer
// already used the idempotency key, returns that order with created false.
func (s *Store) Create(ctx context.Context, o domain.Order, lease time.Duration) (domain.Order, bool, error) {
	var out domain.Order
	created := false
	err := pkgstore.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `INSERT INTO orders (id, customer_id, idempotency_key, fingerprint, status, lease_until)
			VALUES ($1, $2, $3, $4, 'pending', now() + make_interval(secs => $5))
			ON CONFLICT (customer_id, idempotency_key) DO NOTHING
			RETURNING `+orderColumns, o.ID, o.CustomerID, o.IdempotencyKey, o.Fingerprint, lease.Seconds())
		got, err := scanOrder(row)
		if errors.Is(err, pgx.ErrNoRows) {
			created = false
			return nil
		}
		if err != nil {
			return err
		}
		for i, it := range o.Items {
			if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, line, sku, quantity) VALUES ($1, $2, $3, $4)`,
				o.ID, i, it.SKU, it.Quantity); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO saga_steps (order_id, step, outcome) VALUES ($1, 'create', 'succeeded')`, o.ID); err != nil {
			return err
		}
		got.Items = o.Items
		out, created = got, true
		return nil
	})
	if err != nil {
		return domain.Order{}, false, fmt.Errorf("creating order: %w", err)
	}
	if created {
		return out, true, nil
	}
	existing, err := s.GetByKey(ctx, o.CustomerID, o.IdempotencyKey)
	return existing, false, err
}

// GetByKey finds a customer's order by idempotency key.
func (s *Store) GetByKey(ctx context.Context, customerID, key string) (domain.Order, error) {
	return s.getWhere(ctx, "customer_id = $1 AND idempotency_key = $2", customerID, key)
}

// Get finds an order by ID.
func (s *Store) Get(ctx context.Context, id string) (domain.Order, error) {
	return s.getWhere(ctx, "id = $1", id)
}

func (s *Store) getWhere(ctx context.Context, where string, args ...any) (domain.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Order{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("reading order: %w", err)
	}
	orders := []domain.Order{o}
	if err := s.loadItems(ctx, orders); err != nil {
		return domain.Order{}, err
	}
	return orders[0], nil
}

// List returns the newest orders of a customer (all customers when
// customerID is empty), at most limit.
func (s *Store) List(ctx context.Context, customerID string, limit int) ([]domain.Order, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders
		WHERE ($1 = '' OR customer_id = $1) ORDER BY created_at DESC, id LIMIT $2`, customerID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing orders: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Order, error) { return scanOrder(r) })
	if err != nil {
		return nil, fmt.Errorf("listing orders: %w", err)
	}
	if err := s.loadItems(ctx, orders); err != nil {
		return nil, err
	}
	return orders, nil
}

func (s *Store) loadItems(ctx context.Context, orders []domain.Order) error {
	if len(orders) == 0 {
		return nil
	}
	ids := make([]string, len(orders))
	index := map[string]int{}
	for i, o := range orders {
		ids[i], index[o.ID] = o.ID, i
		orders[i].Items = []domain.Item{}
	}
	rows, err := s.pool.Query(ctx, `SELECT order_id::text, sku, quantity FROM order_items
		WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line`, ids)
	if err != nil {
		return fmt.Errorf("reading order items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var it domain.Item
		if err := rows.Scan(&id, &it.SKU, &it.Quantity); err != nil {
			return fmt.Errorf("reading order items: %w", err)
		}
		orders[index[id]].Items = append(orders[index[id]].Items, it)
	}
	return rows.Err()
}

// Save writes the order's saga fields, a journal entry and, when event is
// not nil, an outbox event, in one transaction. While the order is not
// finished its lease is renewed for lease; once it is, the lease is
// dropped.
func (s *Store) Save(ctx context.Context, o domain.Order, step Step, event *Event, lease time.Duration) error {
	finished := o.Status == domain.StatusConfirmed || (o.Status == domain.StatusFailed && o.Compensated)
	err := pkgstore.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, reason = $3, total_cents = $4, currency = $5,
				reservation_id = $6, payment_id = $7, reserve_unknown = $8, charge_unknown = $9, compensated = $10,
				lease_until = CASE WHEN $11 THEN NULL ELSE now() + make_interval(secs => $12) END, updated_at = now()
			WHERE id = $1`,
			o.ID, string(o.Status), o.Reason, o.TotalCents, o.Currency, o.ReservationID, o.PaymentID,
			o.ReserveUnknown, o.ChargeUnknown, o.Compensated, finished, lease.Seconds())
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return domain.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `INSERT INTO saga_steps (order_id, step, outcome, detail) VALUES ($1, $2, $3, $4)`,
			o.ID, step.Name, step.Outcome, step.Detail); err != nil {
			return err
		}
		if event != nil {
			payload, err := json.Marshal(event.Payload)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO outbox (order_id, event_type, payload) VALUES ($1, $2, $3)`,
				o.ID, event.Type, payload); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saving order %s (%s %s): %w", o.ID, step.Name, step.Outcome, err)
	}
	return nil
}

// ClaimStale takes over up to limit unfinished orders whose lease has run
// out (their saga stopped, most likely with a crashed process), leasing
// them for lease so that no other replica takes them at the same time.
func (s *Store) ClaimStale(ctx context.Context, lease time.Duration, limit int) ([]domain.Order, error) {
	var orders []domain.Order
	err := pkgstore.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE orders SET lease_until = now() + make_interval(secs => $1)
			WHERE id IN (
				SELECT id FROM orders
				WHERE status <> 'confirmed' AND NOT (status = 'failed' AND compensated)
				  AND (lease_until IS NULL OR lease_until < now())
				ORDER BY lease_until NULLS FIRST
				LIMIT $2
				FOR UPDATE SKIP LOCKED)
			RETURNING `+orderColumns, lease.Seconds(), limit)
		if err != nil {
			return err
		}
		orders, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Order, error) { return scanOrder(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming unfinished orders: %w", err)
	}
	if err := s.loadItems(ctx, orders); err != nil {
		return nil, err
	}
	return orders, nil
}

// Steps is the saga journal of an order, oldest first.
func (s *Store) Steps(ctx context.Context, orderID string) ([]Step, error) {
	rows, err := s.pool.Query(ctx, `SELECT step, outcome, detail FROM saga_steps WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Step, error) {
		var st Step
		err := r.Scan(&st.Name, &st.Outcome, &st.Detail)
		return st, err
	})
}

// AppendStep adds a journal entry without changing the order.
func (s *Store) AppendStep(ctx context.Context, orderID string, step Step) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO saga_steps (order_id, step, outcome, detail) VALUES ($1, $2, $3, $4)`,
		orderID, step.Name, step.Outcome, step.Detail)
	return err
}
