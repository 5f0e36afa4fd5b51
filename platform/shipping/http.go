package shipping

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
	creates     *prometheus.CounterVec
	transitions *prometheus.CounterVec
}

// NewMetrics registers the shipping metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		creates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_shipping_creates_total",
			Help: "Shipment create requests answered, by outcome (created, undeliverable, order_closed, replayed).",
		}, []string{"outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_shipping_transitions_total",
			Help: "Shipments cancelled or delivered (repeats do not count), by new status.",
		}, []string{"status"}),
	}
	reg.MustRegister(m.creates, m.transitions)
	return m
}

// Shipper is what the API needs from its store (*Store): the Service's
// seam for tests without PostgreSQL (shippingtest.Store).
type Shipper interface {
	Create(ctx context.Context, req CreateRequest, key, correlationID string, now time.Time) (Result, error)
	Shipments(ctx context.Context, orderID string) (ShipmentList, error)
	Cancel(ctx context.Context, id, correlationID string, now time.Time) (sh Shipment, changed bool, err error)
	Deliver(ctx context.Context, id, correlationID string, now time.Time) (sh Shipment, changed bool, err error)
	CancelByOrder(ctx context.Context, orderID, correlationID string, now time.Time) (l ShipmentList, cancelled int, err error)
}

var _ Shipper = (*Store)(nil)

// Service is the Shipping HTTP API.
type Service struct {
	Store   Shipper
	Log     *slog.Logger
	Metrics *Metrics // optional
	Ready   func(context.Context) error
	Now     func() time.Time
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathShipments, s.create)
	mux.HandleFunc("GET "+PathShipments, s.list)
	mux.HandleFunc("POST "+PathCancelByOrder, s.cancelByOrder)
	mux.HandleFunc("POST "+PathCancel, s.transition(StatusCancelled))
	mux.HandleFunc("POST "+PathDeliver, s.transition(StatusDelivered))
	web.HandleHealth(mux, s.Ready)
	return mux
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	body, err := web.ReadJSONBody(r, MaxBodyBytes)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	req, err := decodeCreate(body)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	key, err := idempotencyKey(r, req.OrderID)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	cid, ctx := web.Correlate(r, req.OrderID)
	res, err := s.Store.Create(ctx, req, key, cid, s.now())
	if errors.Is(err, ErrKeyReused) {
		web.WriteError(w, r, s.Log, &web.Error{Status: http.StatusUnprocessableEntity, Message: ErrCodeKeyReused, Field: web.HeaderIdempotencyKey,
			Extra: map[string]any{"detail": "this key or order already has a shipment for other items or another address"}})
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.creates.WithLabelValues(res.Outcome).Inc()
	}
	if res.Replayed {
		w.Header().Set(web.HeaderReplayed, "true")
	}
	s.Log.InfoContext(ctx, "create shipment", "order_id", req.OrderID, "outcome", res.Outcome, "code", res.Code)
	web.WriteRaw(w, res.Code, res.Body)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	id, err := web.Query(r, "orderId", 128)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	l, err := s.Store.Shipments(r.Context(), id)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, l)
}

// writeTransitionError answers the refusals of cancel and deliver.
func (s *Service) writeTransitionError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "id", "no shipment %q", r.PathValue("id")))
	case errors.Is(err, ErrAlreadyDelivered):
		web.WriteError(w, r, s.Log, &web.Error{Status: http.StatusConflict, Message: ErrCodeAlreadyDelivered,
			Extra: map[string]any{"detail": "a delivered shipment cannot be cancelled"}})
	case errors.Is(err, ErrCancelled):
		web.WriteError(w, r, s.Log, &web.Error{Status: http.StatusConflict, Message: ErrCodeCancelled,
			Extra: map[string]any{"detail": "a cancelled shipment cannot be delivered"}})
	default:
		web.WriteError(w, r, s.Log, err)
	}
}

func (s *Service) transition(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		cid := r.Header.Get(web.HeaderCorrelationID)
		var sh Shipment
		var changed bool
		var err error
		if to == StatusCancelled {
			sh, changed, err = s.Store.Cancel(r.Context(), id, cid, s.now())
		} else {
			sh, changed, err = s.Store.Deliver(r.Context(), id, cid, s.now())
		}
		if err != nil {
			s.writeTransitionError(w, r, err)
			return
		}
		ctx := r.Context()
		if cid == "" {
			ctx = telemetry.WithCorrelationID(ctx, sh.OrderID)
		}
		if changed && s.Metrics != nil {
			s.Metrics.transitions.WithLabelValues(to).Inc()
		}
		s.Log.InfoContext(ctx, "shipment "+to, "order_id", sh.OrderID, "shipment_id", id, "changed_now", changed)
		web.WriteJSON(w, http.StatusOK, sh)
	}
}

func (s *Service) cancelByOrder(w http.ResponseWriter, r *http.Request) {
	id, err := web.Query(r, "orderId", 128)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	cid, ctx := web.Correlate(r, id)
	l, n, err := s.Store.CancelByOrder(ctx, id, cid, s.now())
	if err != nil {
		s.writeTransitionError(w, r, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.transitions.WithLabelValues(StatusCancelled).Add(float64(n))
	}
	s.Log.InfoContext(ctx, "cancel by order", "order_id", id, "cancelled_now", n)
	web.WriteJSON(w, http.StatusOK, l)
}
