package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/inventory/inventorytest"
	"github.com/stampede-dev/stampede/platform/web"
	"github.com/stampede-dev/stampede/platform/web/webtest"
)

const reserveJSON = `{"orderId":"o-1","items":[{"sku":"SKU-00001","qty":2}]}`

var errDown = errors.New("connection refused")

// serve answers r as the service does, behind its middleware, on store.
func serve(store inventory.Reserver, r *http.Request) *httptest.ResponseRecorder {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := httptest.NewRecorder()
	web.Middleware((&inventory.Service{Store: store, Log: log}).Router(), log, nil).ServeHTTP(w, r)
	return w
}

// The store's answers and errors become the API's status codes.
func TestErrorsMapToStatus(t *testing.T) {
	reserve := func(res idempotency.Result, err error) *inventorytest.Store {
		return &inventorytest.Store{ReserveFunc: func(context.Context, inventory.ReserveRequest, string, string, time.Time) (idempotency.Result, error) {
			return res, err
		}}
	}
	release := func(err error) *inventorytest.Store {
		return &inventorytest.Store{ReleaseFunc: func(_ context.Context, id, _ string, _ time.Time) (inventory.Reservation, bool, error) {
			return inventory.Reservation{ReservationID: id, OrderID: "o-1", Status: inventory.StatusReleased}, true, err
		}}
	}
	stock := func(err error) *inventorytest.Store {
		return &inventorytest.Store{StockFunc: func(_ context.Context, sku string) (inventory.Stock, error) {
			return inventory.Stock{SKU: sku, OnHand: 5, Available: 5}, err
		}}
	}
	list := func(err error) *inventorytest.Store {
		return &inventorytest.Store{
			ReservationsFunc: func(_ context.Context, id string) (inventory.ReservationList, error) {
				return inventory.ReservationList{OrderID: id, Reservations: []inventory.Reservation{}}, err
			},
			ReleaseByOrderFunc: func(_ context.Context, id, _, _ string, _ time.Time) (inventory.ReservationList, int, error) {
				return inventory.ReservationList{OrderID: id, Reservations: []inventory.Reservation{}}, 0, err
			},
		}
	}
	created := idempotency.Result{Code: http.StatusCreated, Body: []byte(`{"reservationId":"r-1"}`), Outcome: inventory.StatusReserved}
	tests := []struct {
		name              string
		store             *inventorytest.Store
		method, path, key string
		body              string
		want              webtest.Answer
	}{
		{"ok/reserve", reserve(created, nil), "POST", inventory.PathReservations, "", reserveJSON, webtest.Answer{Code: 201}},
		{"ok/reserve replayed", reserve(idempotency.Result{Code: 201, Body: created.Body, Replayed: true, Outcome: idempotency.OutcomeReplayed}, nil),
			"POST", inventory.PathReservations, "o-1:reserve", reserveJSON, webtest.Answer{Code: 201, Replayed: true}},
		{"ok/out of stock is the recorded answer", reserve(idempotency.Result{Code: http.StatusConflict, Body: []byte(`{"error":"out_of_stock","sku":"SKU-OOS"}`), Outcome: inventory.ErrCodeOutOfStock}, nil),
			"POST", inventory.PathReservations, "", reserveJSON, webtest.Answer{Code: 409, Error: inventory.ErrCodeOutOfStock}},
		{"ok/order closed is the recorded answer", reserve(idempotency.Result{Code: http.StatusConflict, Body: []byte(`{"error":"order_closed","orderId":"o-1"}`), Outcome: inventory.ErrCodeOrderClosed}, nil),
			"POST", inventory.PathReservations, "", reserveJSON, webtest.Answer{Code: 409, Error: inventory.ErrCodeOrderClosed}},
		{"err/reserve key reused", reserve(idempotency.Result{}, inventory.ErrKeyReused), "POST", inventory.PathReservations, "k", reserveJSON,
			webtest.Answer{Code: 422, Error: inventory.ErrCodeKeyReused, Field: web.HeaderIdempotencyKey}},
		{"err/reserve store down", reserve(idempotency.Result{}, errDown), "POST", inventory.PathReservations, "", reserveJSON, webtest.Answer{Code: 500, Error: "internal error"}},
		{"err/reserve bad body never reaches the store", &inventorytest.Store{}, "POST", inventory.PathReservations, "", `{"orderId":"o-1","items":[]}`,
			webtest.Answer{Code: 400, Error: "needs at least 1 element(s)", Field: "items"}},

		{"ok/list", list(nil), "GET", inventory.PathReservations + "?orderId=o-1", "", "", webtest.Answer{Code: 200}},
		{"err/list without orderId", list(nil), "GET", inventory.PathReservations, "", "", webtest.Answer{Code: 400, Error: "query parameter orderId is required (at most 128 characters)", Field: "orderId"}},
		{"err/list store down", list(errDown), "GET", inventory.PathReservations + "?orderId=o-1", "", "", webtest.Answer{Code: 500, Error: "internal error"}},

		{"ok/release", release(nil), "POST", web.Path(inventory.PathRelease, "r-1"), "", "", webtest.Answer{Code: 200}},
		{"err/release unknown", release(inventory.ErrNotFound), "POST", web.Path(inventory.PathRelease, "r-1"), "", "", webtest.Answer{Code: 404, Error: `no reservation "r-1"`, Field: "id"}},
		{"err/release wrapped unknown", release(errors.Join(errors.New("release order o-1"), inventory.ErrNotFound)), "POST", web.Path(inventory.PathRelease, "r-1"), "", "",
			webtest.Answer{Code: 404, Error: `no reservation "r-1"`, Field: "id"}},
		{"err/release store down", release(errDown), "POST", web.Path(inventory.PathRelease, "r-1"), "", "", webtest.Answer{Code: 500, Error: "internal error"}},
		{"err/release of a reservation the saga made", release(fmt.Errorf("undo: %w", &idempotency.SagaOwnedError{OrderID: "o-1"})), "POST", web.Path(inventory.PathRelease, "r-1"), "", "", webtest.Answer{Code: 409, Error: inventory.ErrCodeSagaOwned, Field: "id"}},
		{"err/release by order of the saga's reservation without its key", list(fmt.Errorf("undo: %w", &idempotency.SagaOwnedError{OrderID: "o-1"})), "POST", inventory.PathReleaseByOrder + "?orderId=o-1", "", "",
			webtest.Answer{Code: 409, Error: inventory.ErrCodeSagaOwned, Field: "orderId"}},

		{"ok/release by order", list(nil), "POST", inventory.PathReleaseByOrder + "?orderId=o-1", "", "", webtest.Answer{Code: 200}},
		{"err/release by order without orderId", list(nil), "POST", inventory.PathReleaseByOrder, "", "", webtest.Answer{Code: 400, Error: "query parameter orderId is required (at most 128 characters)", Field: "orderId"}},
		{"err/release by order store down", list(errDown), "POST", inventory.PathReleaseByOrder + "?orderId=o-1", "", "", webtest.Answer{Code: 500, Error: "internal error"}},

		{"ok/stock", stock(nil), "GET", web.Path(inventory.PathStock, "SKU-00001"), "", "", webtest.Answer{Code: 200}},
		{"err/stock unknown", stock(inventory.ErrNotFound), "GET", web.Path(inventory.PathStock, "SKU-X"), "", "", webtest.Answer{Code: 404, Error: `no stock for SKU "SKU-X"`, Field: "sku"}},
		{"err/stock store down", stock(errDown), "GET", web.Path(inventory.PathStock, "SKU-X"), "", "", webtest.Answer{Code: 500, Error: "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			webtest.Check(t, serve(tt.store, webtest.Request(tt.method, tt.path, tt.body, web.HeaderIdempotencyKey, tt.key)), tt.want)
		})
	}
}

// A reserve without an Idempotency-Key is deduplicated on its order, and
// carries the order id as its correlation id.
func TestReserveKeyAndCorrelation(t *testing.T) {
	tests := []struct {
		name, key, cid   string
		wantKey, wantCID string
	}{
		{"ok/no key: the order", "", "", "order:o-1", "o-1"},
		{"ok/key and correlation id", "o-1:reserve", "run-7", "o-1:reserve", "run-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotKey, gotCID string
			var gotReq inventory.ReserveRequest
			store := &inventorytest.Store{ReserveFunc: func(_ context.Context, req inventory.ReserveRequest, key, cid string, _ time.Time) (idempotency.Result, error) {
				gotReq, gotKey, gotCID = req, key, cid
				return idempotency.Result{Code: 201, Body: []byte(`{}`)}, nil
			}}
			w := serve(store, webtest.Request("POST", inventory.PathReservations, reserveJSON, web.HeaderIdempotencyKey, tt.key, web.HeaderCorrelationID, tt.cid))
			want := inventory.Item{SKU: "SKU-00001", Qty: 2}
			if w.Code != 201 || gotKey != tt.wantKey || gotCID != tt.wantCID || len(gotReq.Items) != 1 || gotReq.Items[0] != want {
				t.Fatalf("got %d, key %q, cid %q, items %v; want 201, %q, %q, [%v]", w.Code, gotKey, gotCID, gotReq.Items, tt.wantKey, tt.wantCID, want)
			}
		})
	}
}
