package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopstack/shopstack/apps/pkg/store"
)

func TestConstraintViolationsAreTyped(t *testing.T) {
	pool := openDB(t)
	exec(t, pool, `CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL UNIQUE, stock int NOT NULL CHECK (stock >= 0))`)
	exec(t, pool, `CREATE TABLE reservations (
		id int PRIMARY KEY,
		product int NOT NULL REFERENCES products (id),
		during tstzrange NOT NULL,
		EXCLUDE USING gist (during WITH &&))`)
	exec(t, pool, `INSERT INTO products VALUES (1, 'tea', 5)`)
	exec(t, pool, `INSERT INTO reservations VALUES (1, 1, tstzrange('2030-01-01', '2030-01-02'))`)
	ctx := testContext(t)

	for name, tc := range map[string]struct {
		sql        string
		kind       error
		constraint string
	}{
		"unique":      {`INSERT INTO products VALUES (2, 'tea', 1)`, store.ErrConflict, "products_sku_key"},
		"primary key": {`INSERT INTO products VALUES (1, 'cup', 1)`, store.ErrConflict, "products_pkey"},
		"exclusion":   {`INSERT INTO reservations VALUES (2, 1, tstzrange('2030-01-01 12:00', '2030-01-03'))`, store.ErrConflict, "reservations_during_excl"},
		"check":       {`UPDATE products SET stock = stock - 6 WHERE id = 1`, store.ErrConstraint, "products_stock_check"},
		"foreign key": {`INSERT INTO reservations VALUES (3, 42, tstzrange('2031-01-01', '2031-01-02'))`, store.ErrConstraint, "reservations_product_fkey"},
		"not null":    {`INSERT INTO products (id, sku) VALUES (3, 'pot')`, store.ErrConstraint, ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := store.InTx(ctx, pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tc.sql)
				return err
			})
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v does not match %v", err, tc.kind)
			}
			other := store.ErrConstraint
			if tc.kind == store.ErrConstraint {
				other = store.ErrConflict
			}
			if errors.Is(err, other) {
				t.Errorf("error %v matches %v too", err, other)
			}
			if got := store.ConstraintName(err); got != tc.constraint {
				t.Errorf("constraint %q, want %q", got, tc.constraint)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Error("the *pgconn.PgError is no longer reachable")
			}
		})
	}

	t.Run("no rows", func(t *testing.T) {
		err := store.InTx(ctx, pool, func(tx pgx.Tx) error {
			var sku string
			return tx.QueryRow(ctx, "SELECT sku FROM products WHERE id = 99").Scan(&sku)
		})
		if !errors.Is(err, store.ErrNotFound) || !errors.Is(err, pgx.ErrNoRows) {
			t.Errorf("error %v, want ErrNotFound wrapping pgx.ErrNoRows", err)
		}
	})

	t.Run("other errors pass through", func(t *testing.T) {
		err := store.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT 1/0")
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22012" || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrConstraint) {
			t.Errorf("division by zero came back as %v", err)
		}
	})
}

func TestMapError(t *testing.T) {
	if store.MapError(nil) != nil {
		t.Error("MapError(nil) is not nil")
	}
	plain := errors.New("plain")
	if store.MapError(plain) != plain {
		t.Error("an unrelated error was changed")
	}
	wrapped := fmt.Errorf("saving order: %w", &pgconn.PgError{Code: "23505", ConstraintName: "orders_pkey"})
	mapped := store.MapError(wrapped)
	if !errors.Is(mapped, store.ErrConflict) || store.ConstraintName(mapped) != "orders_pkey" {
		t.Errorf("MapError(%v) = %v", wrapped, mapped)
	}
	if again := store.MapError(mapped); again != mapped {
		t.Error("mapping twice wrapped again")
	}
	if nf := store.MapError(store.MapError(pgx.ErrNoRows)); !errors.Is(nf, store.ErrNotFound) {
		t.Errorf("no rows mapped to %v", nf)
	}
}
