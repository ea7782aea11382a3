// Package store keeps the catalog and the reservations in PostgreSQL. The
// no-oversell rule lives in the schema (see migrations): this package only
// has to change reserved stock in the same transaction as the reservation
// rows, and to lock stock rows in SKU order so that concurrent
// reservations queue instead of deadlocking.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/inventory/internal/domain"
	storex "github.com/shopstack/shopstack/apps/pkg/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Constraint names the service reacts to.
const (
	constraintReservedWithinOnHand = "products_reserved_within_on_hand"
	constraintOrderIDKey           = "reservations_order_id_key"
)

// MaxListed bounds GET /v1/products: the catalog of one shop is expected to
// stay far below it, and a runaway table must not take a replica's memory.
const MaxListed = 10_000

// Store is the inventory database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate brings the schema up to date; safe with many replicas starting.
func (s *Store) Migrate(ctx context.Context) error { return storex.Migrate(ctx, s.pool, migrations) }

// Ping is the readiness check.
func (s *Store) Ping(ctx context.Context) error { return storex.Ping(ctx, s.pool) }

const productColumns = `sku, name, price_cents, currency, on_hand, reserved, updated_at`

func scanProduct(row pgx.Row) (domain.Product, error) {
	var p domain.Product
	err := row.Scan(&p.SKU, &p.Name, &p.PriceCents, &p.Currency, &p.OnHand, &p.Reserved, &p.UpdatedAt)
	return p, err
}

// ListProducts returns the catalog ordered by SKU.
func (s *Store) ListProducts(ctx context.Context) ([]domain.Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+productColumns+` FROM products ORDER BY sku LIMIT $1`, MaxListed)
	if err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	products, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Product, error) { return scanProduct(r) })
	if err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	return products, nil
}

// GetProduct returns one product.
func (s *Store) GetProduct(ctx context.Context, sku string) (domain.Product, error) {
	p, err := scanProduct(s.pool.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE sku = $1`, sku))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, domain.Errorf(domain.CodeNotFound, "product %s not found", sku)
	}
	if err != nil {
		return p, fmt.Errorf("reading product %s: %w", sku, err)
	}
	return p, nil
}

// PutProduct creates or replaces a product. The new on-hand count may not
// go below what active reservations hold.
func (s *Store) PutProduct(ctx context.Context, in domain.ProductInput) (domain.Product, error) {
	p, err := scanProduct(s.pool.QueryRow(ctx, `
		INSERT INTO products (sku, name, price_cents, currency, on_hand)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (sku) DO UPDATE SET
			name = EXCLUDED.name, price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency,
			on_hand = EXCLUDED.on_hand, updated_at = now()
		RETURNING `+productColumns,
		in.SKU, in.Name, in.PriceCents, in.Currency, in.Stock))
	if err = storex.MapError(err); err != nil {
		if storex.ConstraintName(err) == constraintReservedWithinOnHand {
			return p, &domain.Error{Code: domain.CodeStockBelowReserved, Field: "stock",
				Message: fmt.Sprintf("stock %d is below the units of %s held by active reservations", in.Stock, in.SKU)}
		}
		return p, fmt.Errorf("storing product %s: %w", in.SKU, err)
	}
	return p, nil
}

// lockStock locks the stock rows of skus in SKU order, the one order every
// transaction here uses.
func lockStock(ctx context.Context, tx pgx.Tx, skus []string) (map[string]domain.Product, error) {
	rows, err := tx.Query(ctx, `SELECT `+productColumns+` FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus)
	if err != nil {
		return nil, fmt.Errorf("locking stock: %w", err)
	}
	products, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Product, error) { return scanProduct(r) })
	if err != nil {
		return nil, fmt.Errorf("locking stock: %w", err)
	}
	out := make(map[string]domain.Product, len(products))
	for _, p := range products {
		out[p.SKU] = p
	}
	return out, nil
}

// skusOf lists the SKUs the reservations hold, sorted.
func skusOf(ctx context.Context, tx pgx.Tx, ids []string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT sku FROM reservation_items WHERE reservation_id = ANY($1::uuid[]) ORDER BY sku`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading reservation items: %w", err)
	}
	skus, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading reservation items: %w", err)
	}
	return skus, nil
}

// unreserve gives the stock of active reservations back and moves them to
// status. The caller holds the reservations' row locks.
func unreserve(ctx context.Context, tx pgx.Tx, ids []string, status domain.Status) error {
	skus, err := skusOf(ctx, tx, ids)
	if err != nil {
		return err
	}
	if _, err := lockStock(ctx, tx, skus); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE products p SET reserved = p.reserved - t.quantity, updated_at = now()
		FROM (SELECT sku, sum(quantity) AS quantity FROM reservation_items
		      WHERE reservation_id = ANY($1::uuid[]) GROUP BY sku) t
		WHERE p.sku = t.sku`, ids); err != nil {
		return fmt.Errorf("releasing stock: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE reservations SET status = $2, updated_at = now() WHERE id = ANY($1::uuid[])`,
		ids, string(status)); err != nil {
		return fmt.Errorf("updating reservations: %w", err)
	}
	return nil
}

// ExpireDue releases up to limit reservations whose deadline has passed and
// reports how many it released. Rows another replica's sweeper (or a
// commit in flight) holds are skipped, not waited for.
func (s *Store) ExpireDue(ctx context.Context, limit int) (int, error) {
	var n int
	err := storex.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id::text FROM reservations
			WHERE status = 'reserved' AND expires_at <= now()
			ORDER BY expires_at LIMIT $1
			FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		return unreserve(ctx, tx, ids, domain.StatusExpired)
	})
	if err != nil {
		return 0, fmt.Errorf("expiring reservations: %w", err)
	}
	return n, nil
}
