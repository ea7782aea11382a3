package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shopstack/shopstack/apps/inventory/internal/domain"
	storex "github.com/shopstack/shopstack/apps/pkg/store"
)

// requestHash identifies a normalised reservation request, so a retry with
// the same body is told apart from a reuse of the order id with another.
func requestHash(req domain.ReserveRequest) string {
	h := sha256.New()
	fmt.Fprintf(h, "order=%s\nttl=%d\n", req.OrderID, int64(req.TTL.Seconds()))
	for _, it := range req.Items {
		fmt.Fprintf(h, "%s=%d\n", it.SKU, it.Quantity)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Reserve holds stock for every item of req, or for none. req must have
// been normalised (domain.ReserveRequest.Normalize). A repeated request for
// the same order returns the first reservation with replayed set; the same
// order with a different body is refused.
func (s *Store) Reserve(ctx context.Context, req domain.ReserveRequest) (res domain.Reservation, replayed bool, err error) {
	hash := requestHash(req)
	skus := make([]string, len(req.Items))
	quantities := make([]int32, len(req.Items))
	for i, it := range req.Items {
		skus[i], quantities[i] = it.SKU, int32(it.Quantity)
	}
	var short []string
	err = storex.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		short = nil
		stock, err := lockStock(ctx, tx, skus)
		if err != nil {
			return err
		}
		res = domain.Reservation{OrderID: req.OrderID, Status: domain.StatusReserved}
		prices := make([]int64, len(req.Items))
		for i, it := range req.Items {
			p, ok := stock[it.SKU]
			switch {
			case !ok:
				return &domain.Error{Code: domain.CodeNotFound, Field: "items", Message: fmt.Sprintf("product %s not found", it.SKU)}
			case res.Currency == "":
				res.Currency = p.Currency
			case res.Currency != p.Currency:
				return domain.Errorf(domain.CodeMixedCurrencies, "the items are priced in %s and %s; reserve them separately", res.Currency, p.Currency)
			}
			if p.Available() < it.Quantity {
				short = append(short, it.SKU)
			}
			prices[i] = p.PriceCents
			res.Items = append(res.Items, domain.Item{SKU: it.SKU, Quantity: it.Quantity, PriceCents: p.PriceCents})
			res.TotalCents += p.PriceCents * int64(it.Quantity)
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO reservations (order_id, request_hash, currency, total_cents, expires_at)
			VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
			RETURNING id::text, expires_at, created_at`,
			req.OrderID, hash, res.Currency, res.TotalCents, req.TTL.Seconds(),
		).Scan(&res.ID, &res.ExpiresAt, &res.CreatedAt); err != nil {
			return err
		}
		// No check of available stock here: the CHECK constraints decide,
		// so the rule holds for every writer of the table.
		if _, err := tx.Exec(ctx, `
			UPDATE products p SET reserved = p.reserved + v.quantity, updated_at = now()
			FROM unnest($1::text[], $2::int[]) AS v(sku, quantity)
			WHERE p.sku = v.sku`, skus, quantities); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO reservation_items (reservation_id, sku, quantity, price_cents)
			SELECT $1::uuid, v.sku, v.quantity, v.price FROM unnest($2::text[], $3::int[], $4::bigint[]) AS v(sku, quantity, price)`,
			res.ID, skus, quantities, prices)
		return err
	})
	switch {
	case err == nil:
		return res, false, nil
	case storex.ConstraintName(err) == constraintReservedWithinOnHand:
		if len(short) == 0 {
			short = skus
		}
		return res, false, &domain.Error{Code: domain.CodeInsufficientStock, Field: "items",
			Message: "not enough stock of " + strings.Join(short, ", ") + "; nothing was reserved"}
	case storex.ConstraintName(err) == constraintOrderIDKey:
		return s.replay(ctx, req.OrderID, hash)
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return res, false, err
	}
	return res, false, fmt.Errorf("reserving stock for order %s: %w", req.OrderID, err)
}

// replay answers a repeated reservation request for an order.
func (s *Store) replay(ctx context.Context, orderID, hash string) (domain.Reservation, bool, error) {
	var (
		res      domain.Reservation
		prevHash string
	)
	err := storex.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, prevHash, err = readReservation(ctx, tx, "order_id", orderID, false)
		return err
	})
	if err != nil {
		return res, false, err
	}
	if prevHash != hash {
		return domain.Reservation{}, false, domain.Errorf(domain.CodeIdempotencyKeyReused,
			"order %s already has a reservation for different items", orderID)
	}
	return res, true, nil
}

// readReservation reads the reservation whose column (id or order_id)
// equals value, locking it when forUpdate is set.
func readReservation(ctx context.Context, tx pgx.Tx, column, value string, forUpdate bool) (domain.Reservation, string, error) {
	if column != "id" && column != "order_id" {
		return domain.Reservation{}, "", fmt.Errorf("reservations have no key %q", column)
	}
	q := `SELECT id::text, order_id::text, status, currency, total_cents, expires_at, created_at, request_hash
		FROM reservations WHERE ` + column + ` = $1::uuid`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var (
		res    domain.Reservation
		status string
		hash   string
	)
	err := tx.QueryRow(ctx, q, value).Scan(&res.ID, &res.OrderID, &status, &res.Currency, &res.TotalCents,
		&res.ExpiresAt, &res.CreatedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, "", domain.Errorf(domain.CodeNotFound, "reservation not found")
	}
	if err != nil {
		return res, "", fmt.Errorf("reading reservation: %w", err)
	}
	res.Status = domain.Status(status)
	rows, err := tx.Query(ctx, `SELECT sku, quantity, price_cents FROM reservation_items WHERE reservation_id = $1::uuid ORDER BY sku`, res.ID)
	if err != nil {
		return res, "", fmt.Errorf("reading reservation items: %w", err)
	}
	res.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Item, error) {
		var it domain.Item
		err := r.Scan(&it.SKU, &it.Quantity, &it.PriceCents)
		return it, err
	})
	if err != nil {
		return res, "", fmt.Errorf("reading reservation items: %w", err)
	}
	return res, hash, nil
}

// GetReservation returns a reservation by id.
func (s *Store) GetReservation(ctx context.Context, id string) (domain.Reservation, error) {
	var res domain.Reservation
	err := storex.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, _, err = readReservation(ctx, tx, "id", id, false)
		return err
	})
	return res, err
}

// Commit turns reserved stock into sold stock: on_hand and reserved both
// drop by the quantities. Committing a committed reservation changes
// nothing; a released or expired one cannot be committed, and neither can
// one past its deadline that the sweeper has not reached yet (it is
// expired on the spot).
func (s *Store) Commit(ctx context.Context, id string) (domain.Reservation, error) {
	return s.finish(ctx, id, domain.StatusCommitted)
}

// Release gives reserved stock back. Releasing a released or expired
// reservation changes nothing; a committed one cannot be released.
func (s *Store) Release(ctx context.Context, id string) (domain.Reservation, error) {
	return s.finish(ctx, id, domain.StatusReleased)
}

// finish moves an active reservation to committed or released.
func (s *Store) finish(ctx context.Context, id string, to domain.Status) (domain.Reservation, error) {
	var (
		res     domain.Reservation
		refused error
	)
	err := storex.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		refused = nil
		var err error
		if res, _, err = readReservation(ctx, tx, "id", id, true); err != nil {
			return err
		}
		if res.Status != domain.StatusReserved {
			refused = finishedRefusal(res.Status, to)
			return nil
		}
		var due bool
		if err := tx.QueryRow(ctx, `SELECT expires_at <= now() FROM reservations WHERE id = $1::uuid`, id).Scan(&due); err != nil {
			return err
		}
		switch {
		case due && to == domain.StatusCommitted:
			// Too late: expire it now, in this transaction, and refuse.
			res.Status, refused = domain.StatusExpired, finishedRefusal(domain.StatusExpired, to)
			return unreserve(ctx, tx, []string{id}, domain.StatusExpired)
		case to == domain.StatusReleased:
			res.Status = domain.StatusReleased
			return unreserve(ctx, tx, []string{id}, domain.StatusReleased)
		}
		skus := make([]string, len(res.Items))
		for i, it := range res.Items {
			skus[i] = it.SKU
		}
		if _, err := lockStock(ctx, tx, skus); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE products p SET on_hand = p.on_hand - i.quantity, reserved = p.reserved - i.quantity, updated_at = now()
			FROM reservation_items i WHERE i.reservation_id = $1::uuid AND p.sku = i.sku`, id); err != nil {
			return err
		}
		res.Status = domain.StatusCommitted
		_, err = tx.Exec(ctx, `UPDATE reservations SET status = 'committed', updated_at = now() WHERE id = $1::uuid`, id)
		return err
	})
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return res, err
		}
		return res, fmt.Errorf("finishing reservation %s: %w", id, err)
	}
	if refused != nil {
		return res, refused
	}
	return res, nil
}

// finishedRefusal says whether moving a finished reservation (status from)
// to "to" is a repeat (nil) or a contradiction.
func finishedRefusal(from, to domain.Status) error {
	repeat := map[domain.Status][]domain.Status{
		domain.StatusCommitted: {domain.StatusCommitted},
		domain.StatusReleased:  {domain.StatusReleased, domain.StatusExpired},
	}
	if slices.Contains(repeat[to], from) {
		return nil
	}
	verb := map[domain.Status]string{domain.StatusCommitted: "commit", domain.StatusReleased: "release"}[to]
	return domain.Errorf(domain.CodeReservationClosed, "cannot %s a reservation that is %s", verb, from)
}
