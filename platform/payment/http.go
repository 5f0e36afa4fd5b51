package payment

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

// Metrics are the service's domain metrics.
type Metrics struct {
	charges *prometheus.CounterVec
	refunds prometheus.Counter
}

// NewMetrics registers the payments metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		charges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_payments_charges_total",
			Help: "Charge requests answered, by outcome (captured, card_declined, insufficient_funds, order_closed, replayed).",
		}, []string{"outcome"}),
		refunds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stampede_payments_refunds_total",
			Help: "Refunds made (a repeated refund does not count).",
		}),
	}
	reg.MustRegister(m.charges, m.refunds)
	return m
}

// Charger is what the API needs from its store (*Store): the Service's
// seam for tests without PostgreSQL (paymenttest.Store).
type Charger interface {
	Charge(ctx context.Context, req ChargeRequest, key, correlationID string, now time.Time) (Result, error)
	Charges(ctx context.Context, orderID string) (ChargeList, error)
	Refund(ctx context.Context, id, correlationID string, now time.Time) (r Refund, created bool, err error)
	RefundByOrder(ctx context.Context, orderID, correlationID string, now time.Time) (l OrderRefunds, refunded int, err error)
}

var _ Charger = (*Store)(nil)

// Service is the Payments HTTP API.
type Service struct {
	Store   Charger
	Log     *slog.Logger
	Metrics *Metrics // optional
	Ready   func(context.Context) error
	Now     func() time.Time
	// ChargeLatency is a simulated processor delay before a charge's
	// transaction (and so before its commit), so a kill can land while
	// charges are in flight.
	ChargeLatency time.Duration
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathCharges, s.charge)
	mux.HandleFunc("GET "+PathCharges, s.list)
	mux.HandleFunc("POST "+PathRefund, s.refund)
	mux.HandleFunc("POST "+PathRefundByOrder, s.refundByOrder)
	web.HandleHealth(mux, s.Ready)
	return mux
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) charge(w http.ResponseWriter, r *http.Request) {
	key, err := chargeKey(r)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	body, err := web.ReadJSONBody(r, MaxBodyBytes)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	req, err := decodeCharge(body)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	cid, ctx := web.Correlate(r, req.OrderID)
	if s.ChargeLatency > 0 {
		select {
		case <-time.After(s.ChargeLatency):
		case <-ctx.Done():
			return // the caller left; nothing was written, its retry charges
		}
	}
	res, err := s.Store.Charge(ctx, req, key, cid, s.now())
	if errors.Is(err, ErrKeyReused) {
		if s.Metrics != nil {
			s.Metrics.charges.WithLabelValues("key_reused").Inc()
		}
		web.WriteError(w, r, s.Log, &web.Error{Status: http.StatusUnprocessableEntity, Message: ErrCodeKeyReused, Field: web.HeaderIdempotencyKey,
			Extra: map[string]any{"detail": "this key was first used with a different request body"}})
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	// The charge is committed: only now is the answer written.
	if s.Metrics != nil {
		s.Metrics.charges.WithLabelValues(res.Outcome).Inc()
	}
	if res.Replayed {
		w.Header().Set(web.HeaderReplayed, "true")
	}
	s.Log.InfoContext(ctx, "charge", "order_id", req.OrderID, "outcome", res.Outcome, "code", res.Code, "amount_cents", req.AmountCents)
	web.WriteRaw(w, res.Code, res.Body)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	id, err := web.Query(r, "orderId", 128)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	l, err := s.Store.Charges(r.Context(), id)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, l)
}

func (s *Service) refund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cid := r.Header.Get(web.HeaderCorrelationID)
	ref, created, err := s.Store.Refund(r.Context(), id, cid, s.now())
	switch {
	case errors.Is(err, ErrNotFound):
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "id", "no charge %q", id))
		return
	case errors.Is(err, ErrNotRefundable):
		web.WriteError(w, r, s.Log, &web.Error{Status: http.StatusConflict, Message: ErrCodeNotRefundable, Field: "id",
			Extra: map[string]any{"detail": "the charge was declined; no money moved"}})
		return
	case err != nil:
		web.WriteError(w, r, s.Log, err)
		return
	}
	ctx := r.Context()
	if cid == "" {
		ctx = telemetry.WithCorrelationID(ctx, ref.OrderID)
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		if s.Metrics != nil {
			s.Metrics.refunds.Inc()
		}
	}
	s.Log.InfoContext(ctx, "refund", "order_id", ref.OrderID, "charge_id", id, "refunded_now", created)
	web.WriteJSON(w, code, ref)
}

func (s *Service) refundByOrder(w http.ResponseWriter, r *http.Request) {
	id, err := web.Query(r, "orderId", 128)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	cid, ctx := web.Correlate(r, id)
	l, n, err := s.Store.RefundByOrder(ctx, id, cid, s.now())
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.refunds.Add(float64(n))
	}
	s.Log.InfoContext(ctx, "refund by order", "order_id", id, "refunded_now", n)
	web.WriteJSON(w, http.StatusOK, l)
}
