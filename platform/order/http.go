package order

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

// Canceller asks the saga of an order to cancel it. It returns ErrNotFound
// for an unknown order, and a *CancelRefused when the saga refuses.
type Canceller interface {
	Cancel(ctx context.Context, orderID, reason string) error
}

// CancelRefused says why an order can no longer be cancelled.
type CancelRefused struct{ Reason string }

func (e *CancelRefused) Error() string { return "order: cancel refused: " + e.Reason }

// Orders is what the API needs from its store.
type Orders interface {
	Create(ctx context.Context, req CreateRequest, key, correlationID string, now time.Time) (CreateResponse, bool, error)
	Get(ctx context.Context, id string) (Order, error)
	List(ctx context.Context, since time.Time, cursor, userID string, limit int) (List, error)
}

var _ Orders = (*Store)(nil)

// Service is the Orders HTTP API.
type Service struct {
	Store     Orders
	Log       *slog.Logger
	Canceller Canceller // nil: cancellation answers 503
	Ready     func(context.Context) error
	Now       func() time.Time
	// Chain, when set, takes a new order through the other services inside
	// the request, after it is committed, and records where it ended (the
	// REST-chain baseline of the chaos harness, package restchain; never
	// the platform). Its error is answered 503 and leaves the order as far
	// as it got.
	Chain func(ctx context.Context, orderID string, req CreateRequest, correlationID string) (status string, err error)
}

// Router returns the API's routes.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathOrders, s.create)
	mux.HandleFunc("GET "+PathOrders, s.list)
	mux.HandleFunc("GET "+PathOrder, s.get)
	mux.HandleFunc("POST "+PathCancel, s.cancel)
	mux.HandleFunc("GET "+PathOpenAPI, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(OpenAPI)
	})
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
	key, err := web.IdempotencyKey(r, MaxIdempotencyKey)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
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
	cid := r.Header.Get(web.HeaderCorrelationID)
	resp, replayed, err := s.Store.Create(r.Context(), req, key, cid, s.now())
	switch {
	case errors.Is(err, ErrKeyInFlight):
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusConflict, web.HeaderIdempotencyKey, "a request with this key is still in flight; retry later"))
		return
	case errors.Is(err, ErrKeyReusedOtherBody):
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusUnprocessableEntity, web.HeaderIdempotencyKey, "key already used for a different request body"))
		return
	case err != nil:
		web.WriteError(w, r, s.Log, err)
		return
	}
	if cid == "" {
		cid = resp.OrderID
	}
	w.Header().Set(web.HeaderCorrelationID, cid)
	ctx := telemetry.WithCorrelationID(r.Context(), cid)
	if s.Chain != nil && !replayed {
		st, err := s.Chain(ctx, resp.OrderID, req, cid)
		if err != nil {
			web.WriteError(w, r, s.Log, web.Errorf(http.StatusServiceUnavailable, "", "order %s: %v", resp.OrderID, err))
			return
		}
		resp.Status = st
	}
	if replayed {
		w.Header().Set(web.HeaderReplayed, "true")
		s.Log.InfoContext(ctx, "order replayed", "order_id", resp.OrderID)
	} else {
		s.Log.InfoContext(ctx, "order accepted", "order_id", resp.OrderID, "user_id", req.UserID, "total_cents", resp.TotalCents)
	}
	w.Header().Set("Location", web.Path(PathOrder, resp.OrderID))
	web.WriteJSON(w, http.StatusAccepted, resp)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	o, err := s.Store.Get(r.Context(), r.PathValue("id"))
	if err == nil && !web.Allowed(r.Context(), o.UserID) {
		err = ErrNotFound // another user's order: as if there were none
	}
	if errors.Is(err, ErrNotFound) {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "id", "no order %q", r.PathValue("id")))
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, o)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			web.WriteError(w, r, s.Log, web.Errorf(http.StatusBadRequest, "since", "want an RFC 3339 time"))
			return
		}
		since = t
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			web.WriteError(w, r, s.Log, web.Errorf(http.StatusBadRequest, "limit", "want a number between 1 and 1000"))
			return
		}
		limit = n
	}
	// A user lists its own orders; the service token lists everyone's.
	p := web.PrincipalOf(r.Context())
	if !p.Service && p.User == "" {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusUnauthorized, web.HeaderAuthorization, "listing orders needs the user's token or the service token"))
		return
	}
	l, err := s.Store.List(r.Context(), since, q.Get("cursor"), p.User, limit)
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, l)
}

func (s *Service) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := s.Store.Get(r.Context(), id)
	if err == nil && !web.Allowed(r.Context(), o.UserID) {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusNotFound, "id", "no order %q", id))
		return
	}
	if err != nil {
		web.WriteError(w, r, s.Log, err)
		return
	}
	if Terminal(o.Status) {
		web.WriteJSON(w, http.StatusConflict, map[string]string{"error": "not_cancellable", "reason": "order is already " + o.Status})
		return
	}
	if s.Canceller == nil {
		web.WriteError(w, r, s.Log, web.Errorf(http.StatusServiceUnavailable, "", "cancellation is not available: no saga client configured"))
		return
	}
	ctx := telemetry.WithCorrelationID(r.Context(), o.CorrelationID)
	err = s.Canceller.Cancel(ctx, id, "cancelled by customer")
	var refused *CancelRefused
	switch {
	case errors.As(err, &refused):
		web.WriteJSON(w, http.StatusConflict, map[string]string{"error": "not_cancellable", "reason": refused.Reason})
	case errors.Is(err, ErrNotFound):
		// Accepted but its saga has not started yet: the event is on its way.
		web.WriteJSON(w, http.StatusConflict, map[string]string{"error": "not_cancellable", "reason": "order is not being processed yet; retry in a moment"})
	case err != nil:
		web.WriteError(w, r, s.Log, err)
	default:
		s.Log.InfoContext(ctx, "cancel requested", "order_id", id)
		web.WriteJSON(w, http.StatusAccepted, map[string]string{"orderId": id, "status": "cancel_requested"})
	}
}
