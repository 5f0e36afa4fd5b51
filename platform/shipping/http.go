package shipping

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

// NewMetrics registers the shipping metrics on reg.
func NewMetrics(reg prometheus.Registerer) idempotency.Metrics {
	return idempotency.NewMetrics(reg,
		"stampede_shipping_creates_total", "Shipment create requests answered, by outcome (created, undeliverable, order_closed, replayed).",
		"stampede_shipping_transitions_total", "Shipments cancelled or delivered (repeats do not count), by new status.", "status")
}

// Shipper is what the API needs from its store (*Store): the Service's
// seam for tests without PostgreSQL (shippingtest.Store).
type Shipper interface {
	Create(ctx context.Context, req CreateRequest, key, correlationID string, now time.Time) (idempotency.Result, error)
	Shipments(ctx context.Context, orderID string) (ShipmentList, error)
	Cancel(ctx context.Context, id, correlationID string, now time.Time) (sh Shipment, changed bool, err error)
	Deliver(ctx context.Context, id, correlationID string, now time.Time) (sh Shipment, changed bool, err error)
	CancelByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (l ShipmentList, cancelled int, err error)
}

var _ Shipper = (*Store)(nil)

// Service is the Shipping HTTP API.
type Service struct {
	Store   Shipper
	Log     *slog.Logger
	Metrics idempotency.Metrics // optional
	Ready   func(context.Context) error
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathShipments, idempotency.Post[CreateRequest]{Read: readCreate, Do: s.create,
		Reused: ErrKeyReused, Detail: "this key or order already has a shipment for other items or another address", Log: s.Log})
	mux.HandleFunc("GET "+PathShipments, web.ByOrder(s.Log, s.list))
	mux.HandleFunc("POST "+PathCancelByOrder, web.UndoByOrder(s.Log, MaxKeyLen, s.cancelByOrder))
	mux.HandleFunc("POST "+PathCancel, s.transition(StatusCancelled))
	mux.HandleFunc("POST "+PathDeliver, s.transition(StatusDelivered))
	web.HandleHealth(mux, s.Ready)
	return mux
}

func (s *Service) create(ctx context.Context, req CreateRequest, key, cid string) (idempotency.Result, error) {
	res, err := s.Store.Create(ctx, req, key, cid, time.Now())
	if err == nil {
		s.Metrics.Answered.Inc(res.Outcome)
		s.Log.InfoContext(ctx, "create shipment", "order_id", req.OrderID, "outcome", res.Outcome, "code", res.Code)
	}
	return res, err
}

func (s *Service) list(ctx context.Context, orderID, _ string) (ShipmentList, error) {
	return s.Store.Shipments(ctx, orderID)
}

// refusal answers the refusals of cancel and deliver of shipment id.
func refusal(err error, id string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return web.Errorf(http.StatusNotFound, "id", "no shipment %q", id)
	case errors.Is(err, ErrAlreadyDelivered):
		return &web.Error{Status: http.StatusConflict, Message: ErrCodeAlreadyDelivered,
			Extra: map[string]any{"detail": "a delivered shipment cannot be cancelled"}}
	case errors.Is(err, ErrCancelled):
		return &web.Error{Status: http.StatusConflict, Message: ErrCodeCancelled,
			Extra: map[string]any{"detail": "a cancelled shipment cannot be delivered"}}
	}
	field := "id"
	if id == "" {
		field = "orderId"
	}
	return idempotency.RefuseSagaOwned(field, err)
}

func (s *Service) transition(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		change := s.Store.Deliver
		if to == StatusCancelled {
			change = s.Store.Cancel
		}
		id := r.PathValue("id")
		sh, changed, err := change(r.Context(), id, r.Header.Get(web.HeaderCorrelationID), time.Now())
		if err != nil {
			web.WriteError(w, r, s.Log, refusal(err, id))
			return
		}
		_, ctx := web.Correlate(r, sh.OrderID)
		if changed {
			s.Metrics.Changed.Inc(to)
		}
		s.Log.InfoContext(ctx, "shipment "+to, "order_id", sh.OrderID, "shipment_id", id, "changed_now", changed)
		web.WriteJSON(w, http.StatusOK, sh)
	}
}

func (s *Service) cancelByOrder(ctx context.Context, orderID, key, cid string) (ShipmentList, error) {
	l, n, err := s.Store.CancelByOrder(ctx, orderID, key, cid, time.Now())
	if err != nil {
		return l, refusal(err, "")
	}
	s.Metrics.Changed.Add(n, StatusCancelled)
	s.Log.InfoContext(ctx, "cancel by order", "order_id", orderID, "cancelled_now", n)
	return l, nil
}
