package inventory

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
	reservations *prometheus.CounterVec
	releases     prometheus.Counter
}

// NewMetrics registers the inventory metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_inventory_reservations_total",
			Help: "Reserve requests answered, by outcome (reserved, out_of_stock, order_closed, replayed).",
		}, []string{"outcome"}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stampede_inventory_releases_total",
			Help: "Reservations released (a repeated release does not count).",
		}),
	}
	reg.MustRegister(m.reservations, m.releases)
	return m
}

// Reserver is what the API needs from its store (*Store): the Service's
// seam for tests without PostgreSQL (inventorytest.Store).
type Reserver interface {
	Reserve(ctx context.Context, req ReserveRequest, key, correlationID string, now time.Time) (Result, error)
	Reservations(ctx context.Context, orderID string) (ReservationList, error)
	Release(ctx context.Context, id, correlationID string, now time.Time) (r Reservation, released bool, err error)
	ReleaseByOrder(ctx context.Context, orderID, correlationID string, now time.Time) (l ReservationList, released int, err error)
	Stock(ctx context.Context, sku string) (Stock, error)
}

var _ Reserver = (*Store)(nil)

// Service is the Inventory HTTP API.
type Service struct {
	Store   Reserver
	Log     *slog.Logger
	Metrics *Metrics // optional
	Ready   func(context.Context) error
	Now     func() time.Time
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathReservations, s.reserve)
	mux.HandleFunc("GET "+PathReservations, s.list)
	mux.HandleFunc("POST "+PathReleaseByOrder, s.releaseByOrder)
	mux.HandleFunc("POST "+PathRelease, s.release)
	mux.HandleFunc("GET "+PathStock, s.stock)
	web.HandleHealth(mux, s.Ready)
	return mux
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) reserve(w http.ResponseWriter, r *http.Request) {
	body, err := web.ReadJSONBody(r, MaxBodyBytes)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	req, err := decodeReserve(body)
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
	res, err := s.Store.Reserve(ctx, req, key, cid, s.now())
	if errors.Is(err, ErrKeyReused) {
		web.WriteError(w, r, s.Log, &web.Error{Status: http.StatusUnprocessableEntity, Message: ErrCodeKeyReused, Field: web.HeaderIdempotencyKey,
			Extra: map[string]any{"detail": "this key or order already has a reservation for other items"}})
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.reservations.WithLabelValues(res.Outcome).Inc()
	}
	if res.Replayed {
		w.Header().Set(web.HeaderReplayed, "true")
	}
	s.Log.InfoContext(ctx, "reserve", "order_id", req.OrderID, "outcome", res.Outcome, "code", res.Code)
	web.WriteRaw(w, res.Code, res.Body)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	id, err := web.Query(r, "orderId", 128)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	l, err := s.Store.Reservations(r.Context(), id)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, l)
}

func (s *Service) release(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cid := r.Header.Get(web.HeaderCorrelationID)
	res, released, err := s.Store.Release(r.Context(), id, cid, s.now())
	if errors.Is(err, ErrNotFound) {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "id", "no reservation %q", id))
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	ctx := r.Context()
	if cid == "" {
		ctx = telemetry.WithCorrelationID(ctx, res.OrderID)
	}
	if released && s.Metrics != nil {
		s.Metrics.releases.Inc()
	}
	s.Log.InfoContext(ctx, "release", "order_id", res.OrderID, "reservation_id", id, "released_now", released)
	web.WriteJSON(w, http.StatusOK, res)
}

func (s *Service) releaseByOrder(w http.ResponseWriter, r *http.Request) {
	id, err := web.Query(r, "orderId", 128)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	cid, ctx := web.Correlate(r, id)
	l, n, err := s.Store.ReleaseByOrder(ctx, id, cid, s.now())
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.releases.Add(float64(n))
	}
	s.Log.InfoContext(ctx, "release by order", "order_id", id, "released_now", n)
	web.WriteJSON(w, http.StatusOK, l)
}

func (s *Service) stock(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	st, err := s.Store.Stock(r.Context(), sku)
	if errors.Is(err, ErrNotFound) {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "sku", "no stock for SKU %q", sku))
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, st)
}
