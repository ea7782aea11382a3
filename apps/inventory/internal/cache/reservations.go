package cache

import (
	"context"
	"errors"

	"github.com/shopstack/shopstack/apps/inventory/internal/domain"
)

// Stock changes reserved and on-hand counts, which the cached products
// show as "available".
type Stock interface {
	Reserve(ctx context.Context, req domain.ReserveRequest) (domain.Reservation, bool, error)
	Commit(ctx context.Context, id string) (domain.Reservation, error)
	Release(ctx context.Context, id string) (domain.Reservation, error)
}

// InvalidatingStock invalidates the catalog cache after every change to
// stock, so the public "available" counts follow reservations.
type InvalidatingStock struct {
	Next    Stock
	Catalog *Catalog
}

// Reserve reserves and invalidates.
func (s InvalidatingStock) Reserve(ctx context.Context, req domain.ReserveRequest) (domain.Reservation, bool, error) {
	res, replayed, err := s.Next.Reserve(ctx, req)
	if err == nil && !replayed {
		s.Catalog.Invalidate(ctx)
	}
	return res, replayed, err
}

// Commit commits and invalidates.
func (s InvalidatingStock) Commit(ctx context.Context, id string) (domain.Reservation, error) {
	res, err := s.Next.Commit(ctx, id)
	// A refusal may have expired an overdue reservation on the spot.
	if err == nil || errors.Is(err, domain.ErrReservationClosed) {
		s.Catalog.Invalidate(ctx)
	}
	return res, err
}

// Release releases and invalidates.
func (s InvalidatingStock) Release(ctx context.Context, id string) (domain.Reservation, error) {
	res, err := s.Next.Release(ctx, id)
	if err == nil {
		s.Catalog.Invalidate(ctx)
	}
	return res, err
}
