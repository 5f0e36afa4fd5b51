package shipping_test

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
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/shipping/shippingtest"
	"github.com/stampede-dev/stampede/platform/web"
	"github.com/stampede-dev/stampede/platform/web/webtest"
)

const createJSON = `{"orderId":"o-1","items":[{"sku":"SKU-00001","qty":2}],
 "address":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"}}`

var errDown = errors.New("connection refused")

// serve answers r as the service does, behind its middleware, on store.
func serve(store shipping.Shipper, r *http.Request) *httptest.ResponseRecorder {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := httptest.NewRecorder()
	web.Middleware((&shipping.Service{Store: store, Log: log}).Router(), log, nil).ServeHTTP(w, r)
	return w
}

// The store's answers and errors become the API's status codes.
func TestErrorsMapToStatus(t *testing.T) {
	create := func(res idempotency.Result, err error) *shippingtest.Store {
		return &shippingtest.Store{CreateFunc: func(context.Context, shipping.CreateRequest, string, string, time.Time) (idempotency.Result, error) {
			return res, err
		}}
	}
	transition := func(err error) *shippingtest.Store {
		f := func(_ context.Context, id, _ string, _ time.Time) (shipping.Shipment, bool, error) {
			return shipping.Shipment{ShipmentID: id, OrderID: "o-1"}, true, err
		}
		return &shippingtest.Store{CancelFunc: f, DeliverFunc: f}
	}
	list := func(err error) *shippingtest.Store {
		return &shippingtest.Store{
			ShipmentsFunc: func(_ context.Context, id string) (shipping.ShipmentList, error) {
				return shipping.ShipmentList{OrderID: id, Shipments: []shipping.Shipment{}}, err
			},
			CancelByOrderFunc: func(_ context.Context, id, _, _ string, _ time.Time) (shipping.ShipmentList, int, error) {
				return shipping.ShipmentList{OrderID: id, Shipments: []shipping.Shipment{}}, 0, err
			},
		}
	}
	created := idempotency.Result{Code: http.StatusCreated, Body: []byte(`{"shipmentId":"s-1"}`), Outcome: shipping.StatusCreated}
	cancel, deliver := web.Path(shipping.PathCancel, "s-1"), web.Path(shipping.PathDeliver, "s-1")
	byOrder := shipping.PathCancelByOrder + "?orderId=o-1"
	tests := []struct {
		name              string
		store             *shippingtest.Store
		method, path, key string
		body              string
		want              webtest.Answer
	}{
		{"ok/create", create(created, nil), "POST", shipping.PathShipments, "", createJSON, webtest.Answer{Code: 201}},
		{"ok/create replayed", create(idempotency.Result{Code: 201, Body: created.Body, Replayed: true, Outcome: idempotency.OutcomeReplayed}, nil),
			"POST", shipping.PathShipments, "o-1:ship", createJSON, webtest.Answer{Code: 201, Replayed: true}},
		{"ok/undeliverable is the recorded answer", create(idempotency.Result{Code: http.StatusUnprocessableEntity,
			Body: []byte(`{"error":"undeliverable","field":"address.country","orderId":"o-1"}`), Outcome: shipping.ErrCodeUndeliverable}, nil),
			"POST", shipping.PathShipments, "", createJSON, webtest.Answer{Code: 422, Error: shipping.ErrCodeUndeliverable, Field: "address.country"}},
		{"err/create key reused", create(idempotency.Result{}, shipping.ErrKeyReused), "POST", shipping.PathShipments, "k", createJSON,
			webtest.Answer{Code: 422, Error: shipping.ErrCodeKeyReused, Field: web.HeaderIdempotencyKey}},
		{"err/create store down", create(idempotency.Result{}, errDown), "POST", shipping.PathShipments, "", createJSON, webtest.Answer{Code: 500, Error: "internal error"}},
		{"err/create bad body never reaches the store", &shippingtest.Store{}, "POST", shipping.PathShipments, "", `{"orderId":"o-1","items":[{"sku":"A","qty":1}]}`,
			webtest.Answer{Code: 400, Error: "required field missing", Field: "address"}},

		{"ok/list", list(nil), "GET", shipping.PathShipments + "?orderId=o-1", "", "", webtest.Answer{Code: 200}},
		{"err/list without orderId", list(nil), "GET", shipping.PathShipments, "", "", webtest.Answer{Code: 400, Error: "query parameter orderId is required (at most 128 characters)", Field: "orderId"}},
		{"err/list store down", list(errDown), "GET", shipping.PathShipments + "?orderId=o-1", "", "", webtest.Answer{Code: 500, Error: "internal error"}},

		{"ok/cancel", transition(nil), "POST", cancel, "", "", webtest.Answer{Code: 200}},
		{"ok/deliver", transition(nil), "POST", deliver, "", "", webtest.Answer{Code: 200}},
		{"err/cancel unknown", transition(shipping.ErrNotFound), "POST", cancel, "", "", webtest.Answer{Code: 404, Error: `no shipment "s-1"`, Field: "id"}},
		{"err/deliver unknown", transition(shipping.ErrNotFound), "POST", deliver, "", "", webtest.Answer{Code: 404, Error: `no shipment "s-1"`, Field: "id"}},
		{"err/cancel delivered", transition(shipping.ErrAlreadyDelivered), "POST", cancel, "", "", webtest.Answer{Code: 409, Error: shipping.ErrCodeAlreadyDelivered}},
		{"err/deliver cancelled", transition(shipping.ErrCancelled), "POST", deliver, "", "", webtest.Answer{Code: 409, Error: shipping.ErrCodeCancelled}},
		{"err/cancel store down", transition(errDown), "POST", cancel, "", "", webtest.Answer{Code: 500, Error: "internal error"}},
		{"err/cancel of a shipment the saga made", transition(fmt.Errorf("undo: %w", &idempotency.SagaOwnedError{OrderID: "o-1"})), "POST", cancel, "", "", webtest.Answer{Code: 409, Error: shipping.ErrCodeSagaOwned, Field: "id"}},
		{"err/cancel by order of the saga's shipment without its key", list(fmt.Errorf("undo: %w", &idempotency.SagaOwnedError{OrderID: "o-1"})), "POST", byOrder, "", "", webtest.Answer{Code: 409, Error: shipping.ErrCodeSagaOwned, Field: "orderId"}},

		{"ok/cancel by order", list(nil), "POST", byOrder, "", "", webtest.Answer{Code: 200}},
		{"err/cancel by order delivered", list(shipping.ErrAlreadyDelivered), "POST", byOrder, "", "", webtest.Answer{Code: 409, Error: shipping.ErrCodeAlreadyDelivered}},
		{"err/cancel by order without orderId", list(nil), "POST", shipping.PathCancelByOrder, "", "", webtest.Answer{Code: 400, Error: "query parameter orderId is required (at most 128 characters)", Field: "orderId"}},
		{"err/cancel by order store down", list(errDown), "POST", byOrder, "", "", webtest.Answer{Code: 500, Error: "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			webtest.Check(t, serve(tt.store, webtest.Request(tt.method, tt.path, tt.body, web.HeaderIdempotencyKey, tt.key)), tt.want)
		})
	}
}

// A create without an Idempotency-Key is deduplicated on its order, and
// carries the order id as its correlation id.
func TestCreateKeyAndCorrelation(t *testing.T) {
	tests := []struct {
		name, key, cid   string
		wantKey, wantCID string
	}{
		{"ok/no key: the order", "", "", "order:o-1", "o-1"},
		{"ok/key and correlation id", "o-1:ship", "run-7", "o-1:ship", "run-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotKey, gotCID string
			var gotReq shipping.CreateRequest
			store := &shippingtest.Store{CreateFunc: func(_ context.Context, req shipping.CreateRequest, key, cid string, _ time.Time) (idempotency.Result, error) {
				gotReq, gotKey, gotCID = req, key, cid
				return idempotency.Result{Code: 201, Body: []byte(`{}`)}, nil
			}}
			w := serve(store, webtest.Request("POST", shipping.PathShipments, createJSON, web.HeaderIdempotencyKey, tt.key, web.HeaderCorrelationID, tt.cid))
			if w.Code != 201 || gotKey != tt.wantKey || gotCID != tt.wantCID || gotReq.Address.Country != "US" || len(gotReq.Items) != 1 {
				t.Fatalf("got %d, key %q, cid %q, request %+v; want 201, %q, %q and the decoded body", w.Code, gotKey, gotCID, gotReq, tt.wantKey, tt.wantCID)
			}
		})
	}
}
