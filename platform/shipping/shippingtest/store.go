// Package shippingtest fakes the Shipping service's store, so its HTTP API
// (shipping.Service) can be tested without PostgreSQL.
package shippingtest

import (
	"context"
	"errors"
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/shipping"
)

// ErrNotSet is returned by a method whose function is not set.
var ErrNotSet = errors.New("shippingtest: method not set")

// Store answers each method with the function set for it, or ErrNotSet.
type Store struct {
	CreateFunc        func(ctx context.Context, req shipping.CreateRequest, key, correlationID string, now time.Time) (idempotency.Result, error)
	ShipmentsFunc     func(ctx context.Context, orderID string) (shipping.ShipmentList, error)
	CancelFunc        func(ctx context.Context, id, correlationID string, now time.Time) (shipping.Shipment, bool, error)
	DeliverFunc       func(ctx context.Context, id, correlationID string, now time.Time) (shipping.Shipment, bool, error)
	CancelByOrderFunc func(ctx context.Context, orderID, key, correlationID string, now time.Time) (shipping.ShipmentList, int, error)
}

var _ shipping.Shipper = (*Store)(nil)

// Create calls CreateFunc.
func (s *Store) Create(ctx context.Context, req shipping.CreateRequest, key, correlationID string, now time.Time) (idempotency.Result, error) {
	if s.CreateFunc == nil {
		return idempotency.Result{}, ErrNotSet
	}
	return s.CreateFunc(ctx, req, key, correlationID, now)
}

// Shipments calls ShipmentsFunc.
func (s *Store) Shipments(ctx context.Context, orderID string) (shipping.ShipmentList, error) {
	if s.ShipmentsFunc == nil {
		return shipping.ShipmentList{}, ErrNotSet
	}
	return s.ShipmentsFunc(ctx, orderID)
}

// Cancel calls CancelFunc.
func (s *Store) Cancel(ctx context.Context, id, correlationID string, now time.Time) (shipping.Shipment, bool, error) {
	if s.CancelFunc == nil {
		return shipping.Shipment{}, false, ErrNotSet
	}
	return s.CancelFunc(ctx, id, correlationID, now)
}

// Deliver calls DeliverFunc.
func (s *Store) Deliver(ctx context.Context, id, correlationID string, now time.Time) (shipping.Shipment, bool, error) {
	if s.DeliverFunc == nil {
		return shipping.Shipment{}, false, ErrNotSet
	}
	return s.DeliverFunc(ctx, id, correlationID, now)
}

// CancelByOrder calls CancelByOrderFunc.
func (s *Store) CancelByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (shipping.ShipmentList, int, error) {
	if s.CancelByOrderFunc == nil {
		return shipping.ShipmentList{}, 0, ErrNotSet
	}
	return s.CancelByOrderFunc(ctx, orderID, key, correlationID, now)
}
