package restchain

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
)

// services answers each path with its status and records what was called,
// in order.
func services(t *testing.T, status map[string]int) (*Chain, *[]string) {
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.URL.Path+" "+r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		code := status[r.URL.Path]
		if code == 0 {
			code = http.StatusCreated
		}
		w.WriteHeader(code)
		switch code {
		case http.StatusPaymentRequired:
			w.Write([]byte(`{"error":"card_declined"}`))
		case http.StatusConflict:
			w.Write([]byte(`{"error":"out_of_stock"}`))
		default:
			w.Write([]byte(`{}`))
		}
	}))
	t.Cleanup(srv.Close)
	return &Chain{InventoryURL: srv.URL, PaymentsURL: srv.URL, ShippingURL: srv.URL, HTTP: srv.Client()}, &calls
}

func req() order.CreateRequest {
	return order.CreateRequest{UserID: "u-1", Currency: "USD", Items: []event.LineItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 1999}},
		ShippingAddress: event.Address{Name: "A", Line1: "1 Main St", City: "S", PostalCode: "12345", Country: "US"},
		Payment:         event.Payment{Method: "card", Token: "tok_visa"}}
}

func TestChain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     map[string]int
		wantStatus string
		wantReason string
		wantErr    string
		wantCalls  int
	}{
		{"ok/reserved, charged, shipped", nil, order.StatusInTransit, "", "", 3},
		{"ok/out of stock stops at once", map[string]int{inventory.PathReservations: http.StatusConflict}, order.StatusFailed, "out_of_stock", "", 1},
		{"ok/declined: failed, the reservation left as it is", map[string]int{payment.PathCharges: http.StatusPaymentRequired}, order.StatusFailed, "card_declined", "", 2},
		{"err/payments down: no status, the reservation left", map[string]int{payment.PathCharges: http.StatusBadGateway}, "", "", "HTTP 502", 2},
		{"err/shipping down after the charge", map[string]int{shipping.PathShipments: http.StatusServiceUnavailable}, "", "", "HTTP 503", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, calls := services(t, tc.status)
			status, reason, err := c.Run(context.Background(), "o-1", req(), "cid")
			if status != tc.wantStatus && tc.wantErr == "" || reason != tc.wantReason {
				t.Errorf("got %q %q, want %q %q", status, reason, tc.wantStatus, tc.wantReason)
			}
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if len(*calls) != tc.wantCalls {
				t.Errorf("calls %v, want %d: no undo, no retry", *calls, tc.wantCalls)
			}
			for _, c := range *calls {
				if !strings.Contains(c, " o-1:") {
					t.Errorf("call %q without the order's key", c)
				}
			}
		})
	}
}
