//go:build containers

package stampedetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/stampedetest"
)

// TestOrderDelivered places an order through the Orders API of a stack in
// containers and follows it to delivered: the saga runs (inventory, payment
// through toxiproxy, shipment), rests in_transit, and Shipping's deliver
// call reaches it as a signal through Kafka and the orchestrator.
func TestOrderDelivered(t *testing.T) {
	st := stampedetest.Start(context.Background(), t)
	serviceToken = st.ServiceToken
	loopbackOnly(t, st)

	t0 := time.Now()
	id := placeOrder(t, st.OrdersURL, fmt.Sprintf("tc-delivered-%d", time.Now().UnixNano()))
	waitStatus(t, st.OrdersURL, id, "in_transit", 90*time.Second)
	t.Logf("order %s in_transit %s after it was placed", id, time.Since(t0).Round(100*time.Millisecond))

	var list struct {
		Shipments []struct {
			ShipmentID string `json:"shipmentId"`
		} `json:"shipments"`
	}
	getJSON(t, st.ShippingURL+"/v1/shipments?orderId="+id, &list)
	if len(list.Shipments) != 1 {
		t.Fatalf("order %s has %d shipments, want 1", id, len(list.Shipments))
	}
	t0 = time.Now()
	post(t, st.ShippingURL+"/v1/shipments/"+list.Shipments[0].ShipmentID+"/deliver", nil, http.StatusOK)
	waitStatus(t, st.OrdersURL, id, "delivered", 60*time.Second)
	t.Logf("order %s delivered %s after Shipping's deliver", id, time.Since(t0).Round(100*time.Millisecond))
}

// TestPaymentsDownOrderWaits disables the Payments proxy in the toxiproxy
// container (connections refused, as when Payments is down): an order waits
// at its charge instead of failing, and completes once Payments is back.
func TestPaymentsDownOrderWaits(t *testing.T) {
	st := stampedetest.Start(context.Background(), t, stampedetest.WithDeliveryWait(2*time.Second))
	serviceToken = st.ServiceToken

	proxy, err := st.Toxiproxy.Proxy("payments")
	if err != nil {
		t.Fatalf("payments proxy: %v", err)
	}
	if err := proxy.Disable(); err != nil {
		t.Fatalf("disable payments: %v", err)
	}
	t.Cleanup(func() { proxy.Enable() })

	id := placeOrder(t, st.OrdersURL, fmt.Sprintf("tc-chaos-%d", time.Now().UnixNano()))
	waitStatus(t, st.OrdersURL, id, "charging_payment", 60*time.Second)
	time.Sleep(10 * time.Second) // well past several retries
	if s := status(t, st.OrdersURL, id); s != "charging_payment" {
		t.Fatalf("order %s with Payments down: status %q, want it still charging_payment", id, s)
	}

	if err := proxy.Enable(); err != nil {
		t.Fatalf("enable payments: %v", err)
	}
	t0 := time.Now()
	waitStatus(t, st.OrdersURL, id, "delivered", 90*time.Second)
	t.Logf("order %s delivered %s after Payments came back", id, time.Since(t0).Round(100*time.Millisecond))
}

// loopbackOnly checks what the engine says each container publishes: every
// port on 127.0.0.1, none on another address of the host.
func loopbackOnly(t *testing.T, st *stampedetest.Stack) {
	t.Helper()
	n := 0
	for _, name := range st.Names() {
		info, err := st.Container(name).Inspect(context.Background())
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		for port, bindings := range info.NetworkSettings.Ports {
			for _, b := range bindings {
				n++
				if b.HostIP.String() != "127.0.0.1" {
					t.Errorf("%s publishes %s on %s, want 127.0.0.1 only", name, port, b.HostIP)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no published port found")
	}
	t.Logf("%d containers, %d published ports, all on 127.0.0.1", len(st.Names()), n)
}

func placeOrder(t *testing.T, ordersURL, key string) string {
	t.Helper()
	body := map[string]any{
		"userId": "u-tc", "currency": "USD",
		"items":           []map[string]any{{"sku": "SKU-00001", "qty": 1, "priceCents": 1999}},
		"shippingAddress": map[string]any{"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"},
		"payment":         map[string]any{"method": "card", "token": "tok_visa"},
	}
	var out struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	}
	b := post(t, ordersURL+"/v1/orders", body, http.StatusAccepted, "Idempotency-Key", key)
	if err := json.Unmarshal(b, &out); err != nil || out.OrderID == "" {
		t.Fatalf("POST /v1/orders: no order id in %s", b)
	}
	return out.OrderID
}

// serviceToken is the bearer of the stack under test: reading orders and
// calling Shipping take it (placing an order does not, but it does no harm).
var serviceToken string

func post(t *testing.T, url string, body any, want int, header ...string) []byte {
	t.Helper()
	var r io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(http.MethodPost, url, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+serviceToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %s, want %d: %s", url, resp.Status, want, b)
	}
	return b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+serviceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

func status(t *testing.T, ordersURL, id string) string {
	t.Helper()
	var o struct {
		Status string `json:"status"`
	}
	getJSON(t, ordersURL+"/v1/orders/"+id, &o)
	return o.Status
}

// waitStatus polls the order until it has status want, failing on a
// terminal status that is not it or at the deadline.
func waitStatus(t *testing.T, ordersURL, id, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		last = status(t, ordersURL, id)
		switch {
		case last == want:
			return
		case last == "failed" || last == "cancelled" || (last == "delivered" && want != "delivered"):
			t.Fatalf("order %s: status %q, want %q", id, last, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("order %s: status %q after %s, want %q", id, last, timeout, want)
}
