// Package paymenttest fakes the Payments service's store, so its HTTP API
// (payment.Service) can be tested without PostgreSQL.
package paymenttest

import (
	"context"
	"errors"
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/payment"
)

// ErrNotSet is returned by a method whose function is not set.
var ErrNotSet = errors.New("paymenttest: method not set")

// Store answers each method with the function set for it, or ErrNotSet.
type Store struct {
	ChargeFunc        func(ctx context.Context, req payment.ChargeRequest, key, correlationID string, now time.Time) (idempotency.Result, error)
	ChargesFunc       func(ctx context.Context, orderID string) (payment.ChargeList, error)
	RefundFunc        func(ctx context.Context, id, correlationID string, now time.Time) (payment.Refund, bool, error)
	RefundByOrderFunc func(ctx context.Context, orderID, key, correlationID string, now time.Time) (payment.OrderRefunds, int, error)
}

var _ payment.Charger = (*Store)(nil)

// Charge calls ChargeFunc.
func (s *Store) Charge(ctx context.Context, req payment.ChargeRequest, key, correlationID string, now time.Time) (idempotency.Result, error) {
	if s.ChargeFunc == nil {
		return idempotency.Result{}, ErrNotSet
	}
	return s.ChargeFunc(ctx, req, key, correlationID, now)
}

// Charges calls ChargesFunc.
func (s *Store) Charges(ctx context.Context, orderID string) (payment.ChargeList, error) {
	if s.ChargesFunc == nil {
		return payment.ChargeList{}, ErrNotSet
	}
	return s.ChargesFunc(ctx, orderID)
}

// Refund calls RefundFunc.
func (s *Store) Refund(ctx context.Context, id, correlationID string, now time.Time) (payment.Refund, bool, error) {
	if s.RefundFunc == nil {
		return payment.Refund{}, false, ErrNotSet
	}
	return s.RefundFunc(ctx, id, correlationID, now)
}

// RefundByOrder calls RefundByOrderFunc.
func (s *Store) RefundByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (payment.OrderRefunds, int, error) {
	if s.RefundByOrderFunc == nil {
		return payment.OrderRefunds{}, 0, ErrNotSet
	}
	return s.RefundByOrderFunc(ctx, orderID, key, correlationID, now)
}
