package inventory

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

// NewMetrics registers the inventory metrics on reg.
func NewMetrics(reg prometheus.Registerer) idempotency.Metrics {
	return idempotency.NewMetrics(reg,
		"stampede_inventory_reservations_total", "Reserve requests answered, by outcome (reserved, out_of_stock, order_closed, replayed).",
		"stampede_inventory_releases_total", "Reservations released (a repeated release does not count).")
}

// Reserver is what the API needs from its store (*Store): the Service's
// seam for tests without PostgreSQL (inventorytest.Store).
type Reserver interface {
	Reserve(ctx context.Context, req ReserveRequest, key, correlationID string, now time.Time) (idempotency.Result, error)
	Reservations(ctx context.Context, orderID string) (ReservationList, error)
	Release(ctx context.Context, id, correlationID string, now time.Time) (r Reservation, released bool, err error)
	ReleaseByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (l ReservationList, released int, err error)
	Stock(ctx context.Context, sku string) (Stock, error)
}

var _ Reserver = (*Store)(nil)

// Service is the Inventory HTTP API.
type Service struct {
	Store   Reserver
	Log     *slog.Logger
	Metrics idempotency.Metrics // optional
	Ready   func(context.Context) error
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathReservations, idempotency.Post[ReserveRequest]{Read: readReserve, Do: s.reserve,
		Reused: ErrKeyReused, Detail: "this key or order already has a reservation for other items", Log: s.Log})
	mux.HandleFunc("GET "+PathReservations, web.ByOrder(s.Log, s.list))
	mux.HandleFunc("POST "+PathReleaseByOrder, web.UndoByOrder(s.Log, MaxKeyLen, s.releaseByOrder))
	mux.HandleFunc("POST "+PathRelease, s.release)
	mux.HandleFunc("GET "+PathStock, s.stock)
	web.HandleHealth(mux, s.Ready)
	return mux
}

func (s *Service) reserve(ctx context.Context, req ReserveRequest, key, cid string) (idempotency.Result, error) {
	res, err := s.Store.Reserve(ctx, req, key, cid, time.Now())
	if err == nil {
		s.Metrics.Answered.Inc(res.Outcome)
		s.Log.InfoContext(ctx, "reserve", "order_id", req.OrderID, "outcome", res.Outcome, "code", res.Code)
	}
	return res, err
}

func (s *Service) list(ctx context.Context, orderID, _ string) (ReservationList, error) {
	return s.Store.Reservations(ctx, orderID)
}

func (s *Service) release(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, released, err := s.Store.Release(r.Context(), id, r.Header.Get(web.HeaderCorrelationID), time.Now())
	if errors.Is(err, ErrNotFound) {
		err = web.Errorf(http.StatusNotFound, "id", "no reservation %q", id)
	}
	if err != nil {
		err = idempotency.RefuseSagaOwned("id", err)
		web.WriteError(w, r, s.Log, err)
		return
	}
	_, ctx := web.Correlate(r, res.OrderID)
	if released {
		s.Metrics.Changed.Inc()
	}
	s.Log.InfoContext(ctx, "release", "order_id", res.OrderID, "reservation_id", id, "released_now", released)
	web.WriteJSON(w, http.StatusOK, res)
}

func (s *Service) releaseByOrder(ctx context.Context, orderID, key, cid string) (ReservationList, error) {
	l, n, err := s.Store.ReleaseByOrder(ctx, orderID, key, cid, time.Now())
	err = idempotency.RefuseSagaOwned("orderId", err)
	if err == nil {
		s.Metrics.Changed.Add(n)
		s.Log.InfoContext(ctx, "release by order", "order_id", orderID, "released_now", n)
	}
	return l, err
}

func (s *Service) stock(w http.ResponseWriter, r *http.Request) {
	sku, err := web.PathValue(r, "sku", 64) // as a reservation's sku: text PostgreSQL takes
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	st, err := s.Store.Stock(r.Context(), sku)
	if errors.Is(err, ErrNotFound) {
		err = web.Errorf(http.StatusNotFound, "sku", "no stock for SKU %q", sku)
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, st)
}
