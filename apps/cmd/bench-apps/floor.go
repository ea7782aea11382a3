package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// floor issues, straight from Go, the database work one confirmed order
// causes in the services, each service's part as that service's role on its
// own database, transaction for transaction:
//
//	order      1. INSERT orders (pending) + INSERT order_items + INSERT saga_steps        (Store.Create)
//	order      2. UPDATE orders + INSERT saga_steps                      "reserve started" (Store.Save)
//	inventory  3. SELECT products ... FOR UPDATE, INSERT reservations, UPDATE products
//	              SET reserved, INSERT reservation_items                                   (Store.Reserve)
//	order      4. UPDATE orders + INSERT saga_steps                    "reserve succeeded"
//	payment    5. INSERT payments (pending) ON CONFLICT DO NOTHING + SELECT by key         (ClaimCharge)
//	payment    6. UPDATE payments SET status = 'captured' ... RETURNING                    (FinishCharge)
//	order      7. UPDATE orders + INSERT saga_steps                     "charge succeeded"
//	inventory  8. SELECT reservation FOR UPDATE, SELECT its items, SELECT expires_at,
//	              SELECT products FOR UPDATE, UPDATE products SET on_hand, reserved,
//	              UPDATE reservations SET status = 'committed'                             (Store.Commit)
//	order      9. UPDATE orders (confirmed) + INSERT saga_steps + INSERT outbox            (Store.Save)
//
// Left out, since they are not database work: HTTP, TLS, JSON, token checks,
// the payment processor simulator and AES-GCM sealing of the card; and the
// outbox relay's later UPDATE, which runs in the background.
type floor struct {
	order, inventory, payment *pgxpool.Pool
	skus                      []string
}

func newFloor(ctx context.Context, st *stack.Stack, clients int) (*floor, error) {
	open := func(svc string) (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(st.DatabaseDSN(svc))
		if err != nil {
			return nil, err
		}
		cfg.MaxConns = int32(clients)
		return pgxpool.NewWithConfig(ctx, cfg)
	}
	f := &floor{}
	var err error
	if f.order, err = open(stack.Order); err != nil {
		return nil, err
	}
	if f.inventory, err = open(stack.Inventory); err != nil {
		return nil, err
	}
	if f.payment, err = open(stack.Payment); err != nil {
		return nil, err
	}
	// Its own products, so the floor does not share rows with the saga's.
	for i := range clients {
		sku := fmt.Sprintf("floor-%d", i)
		f.skus = append(f.skus, sku)
		if _, err := f.inventory.Exec(ctx, `INSERT INTO products (sku, name, price_cents, currency, on_hand) VALUES ($1, 'Floor item', 100, 'EUR', 10000000)`, sku); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *floor) close() {
	for _, p := range []*pgxpool.Pool{f.order, f.inventory, f.payment} {
		if p != nil {
			p.Close()
		}
	}
}

func (f *floor) closedLoop(ctx context.Context, workers int, d time.Duration) *result {
	return closedLoop(ctx, workers, d, func(ctx context.Context, w, _ int) error { return f.one(ctx, f.skus[w]) })
}

func tx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const saveOrder = `UPDATE orders SET status = $2, reason = '', total_cents = $3, currency = 'EUR',
	reservation_id = $4, payment_id = $5, reserve_unknown = false, charge_unknown = false, compensated = false,
	lease_until = CASE WHEN $6 THEN NULL ELSE now() + make_interval(secs => 60) END, updated_at = now()
	WHERE id = $1`

func (f *floor) save(ctx context.Context, orderID, status, step, outcome, resID, payID string, event bool) error {
	return tx(ctx, f.order, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, saveOrder, orderID, status, 100, resID, payID, status == "confirmed"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO saga_steps (order_id, step, outcome, detail) VALUES ($1, $2, $3, $4)`, orderID, step, outcome, resID); err != nil {
			return err
		}
		if event {
			_, err := tx.Exec(ctx, `INSERT INTO outbox (order_id, event_type, payload) VALUES ($1, 'order.confirmed', $2)`,
				orderID, fmt.Sprintf(`{"order_id":%q,"total_cents":100,"currency":"EUR"}`, orderID))
			return err
		}
		return nil
	})
}

// one is the database work of one confirmed order.
func (f *floor) one(ctx context.Context, sku string) error {
	orderID, customer, key := uuid(), "floor-customer", uuid()
	if err := tx(ctx, f.order, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id, customer_id, idempotency_key, fingerprint, status, lease_until)
			VALUES ($1, $2, $3, 'fp', 'pending', now() + make_interval(secs => 60))
			ON CONFLICT (customer_id, idempotency_key) DO NOTHING`, orderID, customer, key); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, line, sku, quantity) VALUES ($1, 0, $2, 1)`, orderID, sku); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO saga_steps (order_id, step, outcome) VALUES ($1, 'create', 'succeeded')`, orderID)
		return err
	}); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := f.save(ctx, orderID, "pending", "reserve", "started", "", "", false); err != nil {
		return err
	}

	var resID string
	skus, qty, prices := []string{sku}, []int32{1}, []int64{100}
	if err := tx(ctx, f.inventory, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT sku, price_cents FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus)
		if err != nil {
			return err
		}
		rows.Close()
		if err := tx.QueryRow(ctx, `INSERT INTO reservations (order_id, request_hash, currency, total_cents, expires_at)
			VALUES ($1, 'hash', 'EUR', 100, now() + make_interval(secs => 300)) RETURNING id::text`, orderID).Scan(&resID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE products p SET reserved = p.reserved + v.quantity, updated_at = now()
			FROM unnest($1::text[], $2::int[]) AS v(sku, quantity) WHERE p.sku = v.sku`, skus, qty); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO reservation_items (reservation_id, sku, quantity, price_cents)
			SELECT $1::uuid, v.sku, v.quantity, v.price FROM unnest($2::text[], $3::int[], $4::bigint[]) AS v(sku, quantity, price)`,
			resID, skus, qty, prices)
		return err
	}); err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if err := f.save(ctx, orderID, "reserved", "reserve", "succeeded", resID, "", false); err != nil {
		return err
	}

	payID := uuid()
	sealed := make([]byte, 60)
	_, _ = rand.Read(sealed)
	if err := tx(ctx, f.payment, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO payments
			(id, idempotency_key, request_hash, order_id, amount_cents, currency, card_last4, card_sealed, status)
			VALUES ($1, $2, $3, $4, 100, 'EUR', '4242', $5, 'pending') ON CONFLICT (idempotency_key) DO NOTHING`,
			payID, orderID, sealed[:32], orderID, sealed); err != nil {
			return err
		}
		var id string
		return tx.QueryRow(ctx, `SELECT id::text FROM payments WHERE idempotency_key = $1`, orderID).Scan(&id)
	}); err != nil {
		return fmt.Errorf("claim charge: %w", err)
	}
	var status string
	if err := f.payment.QueryRow(ctx, `UPDATE payments SET status = 'captured', failure_reason = '', updated_at = now()
		WHERE id = $1 AND status = 'pending' RETURNING status`, payID).Scan(&status); err != nil {
		return fmt.Errorf("finish charge: %w", err)
	}
	if err := f.save(ctx, orderID, "charged", "charge", "succeeded", resID, payID, false); err != nil {
		return err
	}

	if err := tx(ctx, f.inventory, func(tx pgx.Tx) error {
		var st string
		if err := tx.QueryRow(ctx, `SELECT status FROM reservations WHERE id = $1::uuid FOR UPDATE`, resID).Scan(&st); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT sku, quantity, price_cents FROM reservation_items WHERE reservation_id = $1::uuid ORDER BY sku`, resID)
		if err != nil {
			return err
		}
		rows.Close()
		var due bool
		if err := tx.QueryRow(ctx, `SELECT expires_at <= now() FROM reservations WHERE id = $1::uuid`, resID).Scan(&due); err != nil {
			return err
		}
		if rows, err = tx.Query(ctx, `SELECT sku FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus); err != nil {
			return err
		}
		rows.Close()
		if _, err := tx.Exec(ctx, `UPDATE products p SET on_hand = p.on_hand - i.quantity, reserved = p.reserved - i.quantity, updated_at = now()
			FROM reservation_items i WHERE i.reservation_id = $1::uuid AND p.sku = i.sku`, resID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE reservations SET status = 'committed', updated_at = now() WHERE id = $1::uuid`, resID)
		return err
	}); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return f.save(ctx, orderID, "confirmed", "commit", "succeeded", resID, payID, true)
}
