package payment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/payment/paymenttest"
	"github.com/stampede-dev/stampede/platform/web"
	"github.com/stampede-dev/stampede/platform/web/webtest"
)

const chargeJSON = `{"orderId":"o-1","amountCents":2500,"currency":"EUR","token":"tok_visa"}`

var errDown = errors.New("connection refused")

// serve answers r as the service does, behind its middleware, on store.
func serve(store payment.Charger, r *http.Request) *httptest.ResponseRecorder {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := httptest.NewRecorder()
	web.Middleware((&payment.Service{Store: store, Log: log}).Router(), log, nil).ServeHTTP(w, r)
	return w
}

// The store's answers and errors become the API's status codes.
func TestErrorsMapToStatus(t *testing.T) {
	charge := func(res idempotency.Result, err error) *paymenttest.Store {
		return &paymenttest.Store{ChargeFunc: func(context.Context, payment.ChargeRequest, string, string, time.Time) (idempotency.Result, error) {
			return res, err
		}}
	}
	refund := func(created bool, err error) *paymenttest.Store {
		return &paymenttest.Store{RefundFunc: func(_ context.Context, id, _ string, _ time.Time) (payment.Refund, bool, error) {
			return payment.Refund{RefundID: "rf-1", ChargeID: id, OrderID: "o-1"}, created, err
		}}
	}
	list := func(err error) *paymenttest.Store {
		return &paymenttest.Store{
			ChargesFunc: func(_ context.Context, id string) (payment.ChargeList, error) {
				return payment.ChargeList{OrderID: id, Charges: []payment.Charge{}}, err
			},
			RefundByOrderFunc: func(_ context.Context, id, _, _ string, _ time.Time) (payment.OrderRefunds, int, error) {
				return payment.OrderRefunds{OrderID: id, Refunds: []payment.Refund{}}, 0, err
			},
		}
	}
	captured := idempotency.Result{Code: http.StatusCreated, Body: []byte(`{"chargeId":"c-1","status":"captured"}`), Outcome: payment.StatusCaptured}
	declined := idempotency.Result{Code: http.StatusPaymentRequired, Body: []byte(`{"error":"card_declined","chargeId":"c-1","orderId":"o-1"}`), Outcome: payment.ErrCodeCardDeclined}
	refundPath := web.Path(payment.PathRefund, "c-1")
	tests := []struct {
		name              string
		store             *paymenttest.Store
		method, path, key string
		body              string
		want              webtest.Answer
	}{
		{"ok/charge", charge(captured, nil), "POST", payment.PathCharges, "o-1:charge", chargeJSON, webtest.Answer{Code: 201}},
		{"ok/charge replayed", charge(idempotency.Result{Code: 201, Body: captured.Body, Replayed: true, Outcome: idempotency.OutcomeReplayed}, nil),
			"POST", payment.PathCharges, "o-1:charge", chargeJSON, webtest.Answer{Code: 201, Replayed: true}},
		{"ok/declined is the recorded answer", charge(declined, nil), "POST", payment.PathCharges, "o-1:charge", chargeJSON,
			webtest.Answer{Code: 402, Error: payment.ErrCodeCardDeclined}},
		{"ok/order closed is the recorded answer", charge(idempotency.Result{Code: http.StatusConflict, Body: []byte(`{"error":"order_closed","orderId":"o-1"}`)}, nil),
			"POST", payment.PathCharges, "o-1:charge", chargeJSON, webtest.Answer{Code: 409, Error: payment.ErrCodeOrderClosed}},
		{"err/charge key reused", charge(idempotency.Result{}, payment.ErrKeyReused), "POST", payment.PathCharges, "o-1:charge", chargeJSON,
			webtest.Answer{Code: 422, Error: payment.ErrCodeKeyReused, Field: web.HeaderIdempotencyKey}},
		{"err/charge store down", charge(idempotency.Result{}, errDown), "POST", payment.PathCharges, "o-1:charge", chargeJSON, webtest.Answer{Code: 500, Error: "internal error"}},
		{"err/charge without a key never reaches the store", &paymenttest.Store{}, "POST", payment.PathCharges, "", chargeJSON,
			webtest.Answer{Code: 400, Error: "required: a charge is only safe to retry with an idempotency key (the saga sends {orderId}:charge)", Field: web.HeaderIdempotencyKey}},
		{"err/charge bad body never reaches the store", &paymenttest.Store{}, "POST", payment.PathCharges, "k", `{"orderId":"o-1"}`,
			webtest.Answer{Code: 400, Error: "required field missing", Field: "amountCents"}},

		{"ok/list", list(nil), "GET", payment.PathCharges + "?orderId=o-1", "", "", webtest.Answer{Code: 200}},
		{"err/list without orderId", list(nil), "GET", payment.PathCharges, "", "", webtest.Answer{Code: 400, Error: "query parameter orderId is required (at most 128 characters)", Field: "orderId"}},
		{"err/list store down", list(errDown), "GET", payment.PathCharges + "?orderId=o-1", "", "", webtest.Answer{Code: 500, Error: "internal error"}},

		{"ok/refund made now", refund(true, nil), "POST", refundPath, "", "", webtest.Answer{Code: 201}},
		{"ok/refund made before", refund(false, nil), "POST", refundPath, "", "", webtest.Answer{Code: 200}},
		{"err/refund unknown charge", refund(false, payment.ErrNotFound), "POST", refundPath, "", "", webtest.Answer{Code: 404, Error: `no charge "c-1"`, Field: "id"}},
		{"err/refund declined charge", refund(false, payment.ErrNotRefundable), "POST", refundPath, "", "", webtest.Answer{Code: 409, Error: payment.ErrCodeNotRefundable, Field: "id"}},
		{"err/refund store down", refund(false, errDown), "POST", refundPath, "", "", webtest.Answer{Code: 500, Error: "internal error"}},
		{"err/refund of a charge the saga made", refund(false, fmt.Errorf("undo: %w", &idempotency.SagaOwnedError{OrderID: "o-1"})), "POST", refundPath, "", "", webtest.Answer{Code: 409, Error: payment.ErrCodeSagaOwned, Field: "id"}},
		{"err/refund by order of the saga's charge without its key", list(fmt.Errorf("undo: %w", &idempotency.SagaOwnedError{OrderID: "o-1"})), "POST", payment.PathRefundByOrder + "?orderId=o-1", "", "",
			webtest.Answer{Code: 409, Error: payment.ErrCodeSagaOwned, Field: "orderId"}},
		{"err/refund by order with a non-UTF-8 key", list(nil), "POST", payment.PathRefundByOrder + "?orderId=o-1", "k\xff", "",
			webtest.Answer{Code: 400, Error: "must be valid UTF-8", Field: web.HeaderIdempotencyKey}},

		{"ok/refund by order", list(nil), "POST", payment.PathRefundByOrder + "?orderId=o-1", "", "", webtest.Answer{Code: 200}},
		{"err/refund by order without orderId", list(nil), "POST", payment.PathRefundByOrder, "", "", webtest.Answer{Code: 400, Error: "query parameter orderId is required (at most 128 characters)", Field: "orderId"}},
		{"err/refund by order store down", list(errDown), "POST", payment.PathRefundByOrder + "?orderId=o-1", "", "", webtest.Answer{Code: 500, Error: "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			webtest.Check(t, serve(tt.store, webtest.Request(tt.method, tt.path, tt.body, web.HeaderIdempotencyKey, tt.key)), tt.want)
		})
	}
}

// A charge reaches the store with its key, its decoded body and the order id
// as correlation id when the request carries none.
func TestChargeReachesTheStore(t *testing.T) {
	var gotKey, gotCID string
	var gotReq payment.ChargeRequest
	store := &paymenttest.Store{ChargeFunc: func(_ context.Context, req payment.ChargeRequest, key, cid string, _ time.Time) (idempotency.Result, error) {
		gotReq, gotKey, gotCID = req, key, cid
		return idempotency.Result{Code: 201, Body: []byte(`{}`)}, nil
	}}
	w := serve(store, webtest.Request("POST", payment.PathCharges, chargeJSON, web.HeaderIdempotencyKey, "o-1:charge"))
	want := payment.ChargeRequest{OrderID: "o-1", AmountCents: 2500, Currency: "EUR", Token: "tok_visa"}
	if w.Code != 201 || gotKey != "o-1:charge" || gotCID != "o-1" || gotReq != want {
		t.Fatalf("got %d, key %q, cid %q, request %+v; want 201, o-1:charge, o-1, %+v", w.Code, gotKey, gotCID, gotReq, want)
	}
}

// A charge whose caller leaves during the processor delay is not done and
// not answered: its retry charges.
func TestChargeCallerGoneDuringLatency(t *testing.T) {
	called := false
	store := &paymenttest.Store{ChargeFunc: func(context.Context, payment.ChargeRequest, string, string, time.Time) (idempotency.Result, error) {
		called = true
		return idempotency.Result{Code: 201, Body: []byte(`{}`)}, nil
	}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	h := web.Middleware((&payment.Service{Store: store, Log: log, ChargeLatency: time.Hour}).Router(), log, nil)
	h.ServeHTTP(w, webtest.Request("POST", payment.PathCharges, chargeJSON, web.HeaderIdempotencyKey, "o-1:charge").WithContext(ctx))
	if called || w.Body.Len() != 0 {
		t.Errorf("store called %v, answer %q; want neither", called, w.Body)
	}
}

// Every charge answered counts by outcome, a reused key included.
func TestChargeOutcomesCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	results := []error{nil, payment.ErrKeyReused}
	store := &paymenttest.Store{ChargeFunc: func(context.Context, payment.ChargeRequest, string, string, time.Time) (idempotency.Result, error) {
		err := results[0]
		results = results[1:]
		return idempotency.Result{Code: 201, Body: []byte(`{}`), Outcome: payment.StatusCaptured}, err
	}}
	h := web.Middleware((&payment.Service{Store: store, Log: log, Metrics: payment.NewMetrics(reg)}).Router(), log, nil)
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), webtest.Request("POST", payment.PathCharges, chargeJSON, web.HeaderIdempotencyKey, "o-1:charge"))
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "stampede_payments_charges_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{payment.StatusCaptured: 1, "key_reused": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("charges by outcome %v, want %v", got, want)
	}
}

// A refund by order id reaches the store with the request's key: the
// saga's compensation is told apart by it.
func TestRefundByOrderPassesTheKey(t *testing.T) {
	var gotKey, gotOrder string
	store := &paymenttest.Store{RefundByOrderFunc: func(_ context.Context, id, key, _ string, _ time.Time) (payment.OrderRefunds, int, error) {
		gotOrder, gotKey = id, key
		return payment.OrderRefunds{OrderID: id, Refunds: []payment.Refund{}}, 0, nil
	}}
	w := serve(store, webtest.Request("POST", payment.PathRefundByOrder+"?orderId=o-1", "", web.HeaderIdempotencyKey, "o-1:refund"))
	if w.Code != 200 || gotOrder != "o-1" || gotKey != "o-1:refund" {
		t.Fatalf("got %d, order %q, key %q; want 200 with o-1 and o-1:refund", w.Code, gotOrder, gotKey)
	}
}
