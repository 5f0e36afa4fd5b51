package payment_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/payment/paymenttest"
	"github.com/stampede-dev/stampede/platform/web"
)

const chargeJSON = `{"orderId":"o-1","amountCents":2500,"currency":"EUR","token":"tok_visa"}`

var errDown = errors.New("connection refused")

// answer is what a case expects: the status, the "error" and "field" of an
// error body (both "" for a success), and whether the answer is a replay.
type answer struct {
	code         int
	error, field string
	replayed     bool
}

// request builds a request; headers are name, value pairs.
func request(method, path, body string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// serve answers r as the service does, behind its middleware, on store.
func serve(store payment.Charger, r *http.Request) *httptest.ResponseRecorder {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := httptest.NewRecorder()
	web.Middleware((&payment.Service{Store: store, Log: log}).Router(), log, nil).ServeHTTP(w, r)
	return w
}

func check(t *testing.T, w *httptest.ResponseRecorder, want answer) {
	t.Helper()
	var got struct{ Error, Field string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if w.Code != want.code || got.Error != want.error || got.Field != want.field {
		t.Fatalf("got %d error %q field %q (%s), want %d error %q field %q",
			w.Code, got.Error, got.Field, strings.TrimSpace(w.Body.String()), want.code, want.error, want.field)
	}
	if replayed := w.Header().Get(web.HeaderReplayed) == "true"; replayed != want.replayed {
		t.Errorf("%s = %v, want %v", web.HeaderReplayed, replayed, want.replayed)
	}
}

// The store's answers and errors become the API's status codes.
func TestErrorsMapToStatus(t *testing.T) {
	charge := func(res payment.Result, err error) *paymenttest.Store {
		return &paymenttest.Store{ChargeFunc: func(context.Context, payment.ChargeRequest, string, string, time.Time) (payment.Result, error) {
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
			RefundByOrderFunc: func(_ context.Context, id, _ string, _ time.Time) (payment.OrderRefunds, int, error) {
				return payment.OrderRefunds{OrderID: id, Refunds: []payment.Refund{}}, 0, err
			},
		}
	}
	captured := payment.Result{Code: http.StatusCreated, Body: []byte(`{"chargeId":"c-1","status":"captured"}`), Outcome: payment.OutcomeCaptured}
	declined := payment.Result{Code: http.StatusPaymentRequired, Body: []byte(`{"error":"card_declined","chargeId":"c-1","orderId":"o-1"}`), Outcome: payment.OutcomeCardDeclined}
	refundPath := web.Path(payment.PathRefund, "c-1")
	tests := []struct {
		name              string
		store             *paymenttest.Store
		method, path, key string
		body              string
		want              answer
	}{
		{"ok/charge", charge(captured, nil), "POST", payment.PathCharges, "o-1:charge", chargeJSON, answer{code: 201}},
		{"ok/charge replayed", charge(payment.Result{Code: 201, Body: captured.Body, Replayed: true, Outcome: payment.OutcomeReplayed}, nil),
			"POST", payment.PathCharges, "o-1:charge", chargeJSON, answer{code: 201, replayed: true}},
		{"ok/declined is the recorded answer", charge(declined, nil), "POST", payment.PathCharges, "o-1:charge", chargeJSON,
			answer{code: 402, error: payment.ErrCodeCardDeclined}},
		{"ok/order closed is the recorded answer", charge(payment.Result{Code: http.StatusConflict, Body: []byte(`{"error":"order_closed","orderId":"o-1"}`)}, nil),
			"POST", payment.PathCharges, "o-1:charge", chargeJSON, answer{code: 409, error: payment.ErrCodeOrderClosed}},
		{"err/charge key reused", charge(payment.Result{}, payment.ErrKeyReused), "POST", payment.PathCharges, "o-1:charge", chargeJSON,
			answer{code: 422, error: payment.ErrCodeKeyReused, field: web.HeaderIdempotencyKey}},
		{"err/charge store down", charge(payment.Result{}, errDown), "POST", payment.PathCharges, "o-1:charge", chargeJSON, answer{code: 500, error: "internal error"}},
		{"err/charge without a key never reaches the store", &paymenttest.Store{}, "POST", payment.PathCharges, "", chargeJSON,
			answer{code: 400, error: "required: a charge is only safe to retry with an idempotency key (the saga sends {orderId}:charge)", field: web.HeaderIdempotencyKey}},
		{"err/charge bad body never reaches the store", &paymenttest.Store{}, "POST", payment.PathCharges, "k", `{"orderId":"o-1"}`,
			answer{code: 400, error: "required field missing", field: "amountCents"}},

		{"ok/list", list(nil), "GET", payment.PathCharges + "?orderId=o-1", "", "", answer{code: 200}},
		{"err/list without orderId", list(nil), "GET", payment.PathCharges, "", "", answer{code: 400, error: "query parameter orderId is required (at most 128 characters)", field: "orderId"}},
		{"err/list store down", list(errDown), "GET", payment.PathCharges + "?orderId=o-1", "", "", answer{code: 500, error: "internal error"}},

		{"ok/refund made now", refund(true, nil), "POST", refundPath, "", "", answer{code: 201}},
		{"ok/refund made before", refund(false, nil), "POST", refundPath, "", "", answer{code: 200}},
		{"err/refund unknown charge", refund(false, payment.ErrNotFound), "POST", refundPath, "", "", answer{code: 404, error: `no charge "c-1"`, field: "id"}},
		{"err/refund declined charge", refund(false, payment.ErrNotRefundable), "POST", refundPath, "", "", answer{code: 409, error: payment.ErrCodeNotRefundable, field: "id"}},
		{"err/refund store down", refund(false, errDown), "POST", refundPath, "", "", answer{code: 500, error: "internal error"}},

		{"ok/refund by order", list(nil), "POST", payment.PathRefundByOrder + "?orderId=o-1", "", "", answer{code: 200}},
		{"err/refund by order without orderId", list(nil), "POST", payment.PathRefundByOrder, "", "", answer{code: 400, error: "query parameter orderId is required (at most 128 characters)", field: "orderId"}},
		{"err/refund by order store down", list(errDown), "POST", payment.PathRefundByOrder + "?orderId=o-1", "", "", answer{code: 500, error: "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, serve(tt.store, request(tt.method, tt.path, tt.body, web.HeaderIdempotencyKey, tt.key)), tt.want)
		})
	}
}

// A charge reaches the store with its key, its decoded body and the order id
// as correlation id when the request carries none.
func TestChargeReachesTheStore(t *testing.T) {
	var gotKey, gotCID string
	var gotReq payment.ChargeRequest
	store := &paymenttest.Store{ChargeFunc: func(_ context.Context, req payment.ChargeRequest, key, cid string, _ time.Time) (payment.Result, error) {
		gotReq, gotKey, gotCID = req, key, cid
		return payment.Result{Code: 201, Body: []byte(`{}`)}, nil
	}}
	w := serve(store, request("POST", payment.PathCharges, chargeJSON, web.HeaderIdempotencyKey, "o-1:charge"))
	want := payment.ChargeRequest{OrderID: "o-1", AmountCents: 2500, Currency: "EUR", Token: "tok_visa"}
	if w.Code != 201 || gotKey != "o-1:charge" || gotCID != "o-1" || gotReq != want {
		t.Fatalf("got %d, key %q, cid %q, request %+v; want 201, o-1:charge, o-1, %+v", w.Code, gotKey, gotCID, gotReq, want)
	}
}
