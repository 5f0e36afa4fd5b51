package saga

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/web"
)

// The services tell the saga's work, and its compensation, apart by the
// Idempotency-Keys the saga sends (their SagaKeys, idempotency.SagaKeys):
// each step and each compensation must send exactly those.
func TestActivitiesSendTheKeysTheServicesExpect(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{} // path -> key
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Get(web.HeaderIdempotencyKey)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	a := &Activities{InventoryURL: srv.URL, PaymentsURL: srv.URL, ShippingURL: srv.URL, HTTP: srv.Client()}
	ctx := context.Background()
	in := Input{Order: event.OrderCreated{OrderID: "o-1", UserID: "u-1", Currency: "USD", TotalCents: 5,
		Items: []event.LineItem{{SKU: "A", Qty: 1, PriceCents: 5}}, ShippingAddress: event.Address{Country: "US"}}}
	comp := CompensationInput{OrderID: "o-1", Attempt: 1}
	if _, err := a.Reserve(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Charge(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ship(ctx, in); err != nil {
		t.Fatal(err)
	}
	for _, undo := range []func(context.Context, CompensationInput) error{a.ReleaseReservation, a.RefundCharge, a.CancelShipment} {
		if err := undo(ctx, comp); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		service            string
		stepPath, undoPath string
		keys               idempotency.SagaKeys
	}{
		{"inventory", inventory.PathReservations, inventory.PathReleaseByOrder, inventory.SagaKeys},
		{"payments", payment.PathCharges, payment.PathRefundByOrder, payment.SagaKeys},
		{"shipping", shipping.PathShipments, shipping.PathCancelByOrder, shipping.SagaKeys},
	} {
		if want := "o-1:" + tt.keys.Step; got[tt.stepPath] != want {
			t.Errorf("%s: the step sent key %q, the service takes %q as the saga's", tt.service, got[tt.stepPath], want)
		}
		if want := "o-1:" + tt.keys.Undo; got[tt.undoPath] != want {
			t.Errorf("%s: the compensation sent key %q, the service takes %q as the saga's", tt.service, got[tt.undoPath], want)
		}
	}
}
