// Package inventorytest fakes the Inventory service's store, so its HTTP API
// (inventory.Service) can be tested without PostgreSQL.
package inventorytest

import (
	"context"
	"errors"
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/inventory"
)

// ErrNotSet is returned by a method whose function is not set.
var ErrNotSet = errors.New("inventorytest: method not set")

// Store answers each method with the function set for it, or ErrNotSet.
type Store struct {
	ReserveFunc        func(ctx context.Context, req inventory.ReserveRequest, key, correlationID string, now time.Time) (idempotency.Result, error)
	ReservationsFunc   func(ctx context.Context, orderID string) (inventory.ReservationList, error)
	ReleaseFunc        func(ctx context.Context, id, correlationID string, now time.Time) (inventory.Reservation, bool, error)
	ReleaseByOrderFunc func(ctx context.Context, orderID, key, correlationID string, now time.Time) (inventory.ReservationList, int, error)
	StockFunc          func(ctx context.Context, sku string) (inventory.Stock, error)
}

var _ inventory.Reserver = (*Store)(nil)

// Reserve calls ReserveFunc.
func (s *Store) Reserve(ctx context.Context, req inventory.ReserveRequest, key, correlationID string, now time.Time) (idempotency.Result, error) {
	if s.ReserveFunc == nil {
		return idempotency.Result{}, ErrNotSet
	}
	return s.ReserveFunc(ctx, req, key, correlationID, now)
}

// Reservations calls ReservationsFunc.
func (s *Store) Reservations(ctx context.Context, orderID string) (inventory.ReservationList, error) {
	if s.ReservationsFunc == nil {
		return inventory.ReservationList{}, ErrNotSet
	}
	return s.ReservationsFunc(ctx, orderID)
}

// Release calls ReleaseFunc.
func (s *Store) Release(ctx context.Context, id, correlationID string, now time.Time) (inventory.Reservation, bool, error) {
	if s.ReleaseFunc == nil {
		return inventory.Reservation{}, false, ErrNotSet
	}
	return s.ReleaseFunc(ctx, id, correlationID, now)
}

// ReleaseByOrder calls ReleaseByOrderFunc.
func (s *Store) ReleaseByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (inventory.ReservationList, int, error) {
	if s.ReleaseByOrderFunc == nil {
		return inventory.ReservationList{}, 0, ErrNotSet
	}
	return s.ReleaseByOrderFunc(ctx, orderID, key, correlationID, now)
}

// Stock calls StockFunc.
func (s *Store) Stock(ctx context.Context, sku string) (inventory.Stock, error) {
	if s.StockFunc == nil {
		return inventory.Stock{}, ErrNotSet
	}
	return s.StockFunc(ctx, sku)
}
