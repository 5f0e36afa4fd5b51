package payment

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/web"
)

// NewMetrics registers the payments metrics on reg.
func NewMetrics(reg prometheus.Registerer) idempotency.Metrics {
	return idempotency.NewMetrics(reg,
		"stampede_payments_charges_total", "Charge requests answered, by outcome (captured, card_declined, insufficient_funds, order_closed, replayed).",
		"stampede_payments_refunds_total", "Refunds made (a repeated refund does not count).")
}

// Charger is what the API needs from its store (*Store): the Service's
// seam for tests without PostgreSQL (paymenttest.Store).
type Charger interface {
	Charge(ctx context.Context, req ChargeRequest, key, correlationID string, now time.Time) (idempotency.Result, error)
	Charges(ctx context.Context, orderID string) (ChargeList, error)
	Refund(ctx context.Context, id, correlationID string, now time.Time) (r Refund, created bool, err error)
	RefundByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (l OrderRefunds, refunded int, err error)
}

var _ Charger = (*Store)(nil)

// Service is the Payments HTTP API.
type Service struct {
	Store   Charger
	Log     *slog.Logger
	Metrics idempotency.Metrics // optional
	Ready   func(context.Context) error
	// ChargeLatency is a simulated processor delay before a charge's
	// transaction (and so before its commit), so a kill can land while
	// charges are in flight.
	ChargeLatency time.Duration
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathCharges, idempotency.Post[ChargeRequest]{Read: readCharge, Do: s.charge,
		Reused: ErrKeyReused, Detail: "this key was first used with a different request body", Log: s.Log})
	mux.HandleFunc("GET "+PathCharges, web.ByOrder(s.Log, s.list))
	mux.HandleFunc("POST "+PathRefund, s.refund)
	mux.HandleFunc("POST "+PathRefundByOrder, web.UndoByOrder(s.Log, MaxKeyLen, s.refundByOrder))
	web.HandleHealth(mux, s.Ready)
	return mux
}

func (s *Service) charge(ctx context.Context, req ChargeRequest, key, cid string) (idempotency.Result, error) {
	if s.ChargeLatency > 0 {
		select {
		case <-time.After(s.ChargeLatency):
		case <-ctx.Done():
			return idempotency.Result{}, idempotency.ErrGone // nothing was written: its retry charges
		}
	}
	res, err := s.Store.Charge(ctx, req, key, cid, time.Now())
	switch {
	case errors.Is(err, ErrKeyReused):
		s.Metrics.Answered.Inc("key_reused")
	case err == nil:
		// The charge is committed: only now is the answer written.
		s.Metrics.Answered.Inc(res.Outcome)
		s.Log.InfoContext(ctx, "charge", "order_id", req.OrderID, "outcome", res.Outcome, "code", res.Code, "amount_cents", req.AmountCents)
	}
	return res, err
}

func (s *Service) list(ctx context.Context, orderID, _ string) (ChargeList, error) {
	return s.Store.Charges(ctx, orderID)
}

func (s *Service) refund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ref, created, err := s.Store.Refund(r.Context(), id, r.Header.Get(web.HeaderCorrelationID), time.Now())
	switch {
	case errors.Is(err, ErrNotFound):
		err = web.Errorf(http.StatusNotFound, "id", "no charge %q", id)
	case errors.Is(err, ErrNotRefundable):
		err = &web.Error{Status: http.StatusConflict, Message: ErrCodeNotRefundable, Field: "id",
			Extra: map[string]any{"detail": "the charge was declined; no money moved"}}
	default:
		err = idempotency.RefuseSagaOwned("id", err)
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	_, ctx := web.Correlate(r, ref.OrderID)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		s.Metrics.Changed.Inc()
	}
	s.Log.InfoContext(ctx, "refund", "order_id", ref.OrderID, "charge_id", id, "refunded_now", created)
	web.WriteJSON(w, code, ref)
}

func (s *Service) refundByOrder(ctx context.Context, orderID, key, cid string) (OrderRefunds, error) {
	l, n, err := s.Store.RefundByOrder(ctx, orderID, key, cid, time.Now())
	if err != nil {
		return l, idempotency.RefuseSagaOwned("orderId", err)
	}
	if err == nil {
		s.Metrics.Changed.Add(n)
		s.Log.InfoContext(ctx, "refund by order", "order_id", orderID, "refunded_now", n)
	}
	return l, err
}
