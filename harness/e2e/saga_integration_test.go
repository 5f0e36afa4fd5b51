//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/stacktest"
)

const units = 1_000_000

type placed struct {
	id     string
	expect string
	qty    int
}

// testSKU adds a SKU of its own to the inventory, so the stock check is exact
// whatever else runs on the stack.
func testSKU(t *testing.T, db *pgxpool.Pool, name string) string {
	t.Helper()
	sku := fmt.Sprintf("SKU-E2E-%s-%d", name, time.Now().UnixNano())
	if _, err := db.Exec(context.Background(),
		`INSERT INTO inventory.stock (sku, warehouse_id, on_hand) VALUES ($1, 'WH-E2E', $2)`, sku, units); err != nil {
		t.Fatalf("seed %s: %v", sku, err)
	}
	return sku
}

func orderBody(userID, sku string, qty int, expect string) map[string]any {
	items := []map[string]any{{"sku": sku, "qty": qty, "priceCents": 1250}}
	token, country, postal := "tok_visa", "US", "12345"
	switch expect {
	case "declined":
		token = "tok_declined"
	case "out_of_stock":
		items = append(items, map[string]any{"sku": "SKU-OOS", "qty": 1, "priceCents": 500})
	case "undeliverable":
		country = "XX"
	}
	return map[string]any{
		"userId": userID, "currency": "USD", "items": items,
		"shippingAddress": map[string]any{"name": "E2E", "line1": "1 Test St", "city": "Testville", "postalCode": postal, "country": country},
		"payment":         map[string]any{"method": "card", "token": token},
	}
}

func place(t *testing.T, key string, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	for attempt := 0; attempt < 3; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, stacktest.URL(config.Orders)+"/v1/orders", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		var out struct{ OrderID string }
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			t.Errorf("place %s: %d %s", key, resp.StatusCode, raw)
			return ""
		}
		if err := json.Unmarshal(raw, &out); err != nil || out.OrderID == "" {
			t.Errorf("place %s: no order id in %s", key, raw)
			return ""
		}
		return out.OrderID
	}
	t.Errorf("place %s: Orders API unreachable", key)
	return ""
}

func placeAll(t *testing.T, prefix string, bodies []map[string]any, expects []string, qtys []int, parallel int) []placed {
	t.Helper()
	out := make([]placed, len(bodies))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range bodies {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = placed{id: place(t, fmt.Sprintf("%s-%d", prefix, i), bodies[i]), expect: expects[i], qty: qtys[i]}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// settled reports whether an order's status is where its expected outcome
// leaves it (the delivery wait is long, so successful orders rest in_transit).
func settled(expect, status string) bool {
	if expect == "complete" {
		return status == "in_transit" || status == "delivered"
	}
	return status == "failed"
}

// waitSettled polls the orders table until every order is settled or the
// deadline passes, and returns the last status of each.
func waitSettled(t *testing.T, db *pgxpool.Pool, orders []placed, timeout time.Duration) map[string]string {
	t.Helper()
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.id
	}
	deadline := time.Now().Add(timeout)
	status := map[string]string{}
	lastReport := time.Now()
	for {
		rows, err := db.Query(context.Background(), `SELECT id::text, status FROM orders.orders WHERE id::text = ANY($1)`, ids)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, s string
			if err := rows.Scan(&id, &s); err != nil {
				t.Fatal(err)
			}
			status[id] = s
		}
		rows.Close()
		pending := 0
		for _, o := range orders {
			switch status[o.id] {
			case "in_transit", "delivered", "failed", "cancelled": // where a saga rests
			default:
				pending++
			}
		}
		if pending == 0 {
			return status
		}
		if time.Since(lastReport) > 10*time.Second {
			t.Logf("%d of %d orders not settled yet", pending, len(orders))
			lastReport = time.Now()
		}
		if time.Now().After(deadline) {
			return status
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type moneyFacts struct{ captured, refunded, refunds int }

// charges reads each order's charges from the Payments service's own tables.
func charges(t *testing.T, db *pgxpool.Pool, ids []string) map[string]moneyFacts {
	t.Helper()
	rows, err := db.Query(context.Background(), `
		SELECT c.order_id, c.status, (SELECT count(*) FROM payments.refunds r WHERE r.charge_id = c.id)
		FROM payments.charges c WHERE c.order_id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]moneyFacts{}
	for rows.Next() {
		var id, status string
		var refunds int
		if err := rows.Scan(&id, &status, &refunds); err != nil {
			t.Fatal(err)
		}
		f := out[id]
		switch status {
		case "captured":
			f.captured++
		case "refunded":
			f.captured++
			f.refunded++
		}
		f.refunds += refunds
		out[id] = f
	}
	return out
}

func stock(t *testing.T, sku string) (available, reserved int64) {
	t.Helper()
	resp, err := http.Get(stacktest.URL(config.Inventory) + "/v1/stock/" + sku)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Available, Reserved int64 }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		t.Fatalf("GET stock %s: %s", sku, resp.Status)
	}
	return s.Available, s.Reserved
}

// TestSagaMix: 200 orders with 5% declined, 2% out of stock and 1%
// undeliverable each end in the state their input implies; stock returns to
// its start minus what successful orders hold; every failed order's charge
// is refunded and its reservation released; no shipment survives a failure.
func TestSagaMix(t *testing.T) {
	db := stacktest.DB(t, "orders")
	sku := testSKU(t, db, "mix")
	run := fmt.Sprintf("e2e-mix-%d", time.Now().UnixNano())

	var bodies []map[string]any
	var expects []string
	var qtys []int
	for i := range 200 {
		expect := "complete"
		switch i % 100 {
		case 10, 30, 50, 70, 90:
			expect = "declined"
		case 20, 60:
			expect = "out_of_stock"
		case 40:
			expect = "undeliverable"
		}
		qty := 1 + i%3
		bodies = append(bodies, orderBody(fmt.Sprintf("u-%d", 1+i%50), sku, qty, expect))
		expects = append(expects, expect)
		qtys = append(qtys, qty)
	}
	orders := placeAll(t, run, bodies, expects, qtys, 10)
	status := waitSettled(t, db, orders, 4*time.Minute)

	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.id
	}
	money := charges(t, db, ids)
	var held int64
	counts := map[string]int{}
	for _, o := range orders {
		s := status[o.id]
		counts[o.expect+"->"+s]++
		if !settled(o.expect, s) {
			t.Errorf("order %s (expect %s): status %q", o.id, o.expect, s)
			continue
		}
		m := money[o.id]
		switch o.expect {
		case "complete":
			held += int64(o.qty)
			if m.captured != 1 || m.refunded != 0 {
				t.Errorf("order %s (complete): %d captured, %d refunded; want 1 and 0", o.id, m.captured, m.refunded)
			}
		case "declined", "out_of_stock":
			if m.captured != 0 {
				t.Errorf("order %s (%s): %d charges captured, want none", o.id, o.expect, m.captured)
			}
		case "undeliverable":
			if m.captured != 1 || m.refunded != 1 || m.refunds != 1 {
				t.Errorf("order %s (undeliverable): captured %d refunded %d refunds %d; want the charge refunded once", o.id, m.captured, m.refunded, m.refunds)
			}
		}
		if o.expect != "complete" {
			var leaked int
			if err := db.QueryRow(context.Background(),
				`SELECT count(*) FROM inventory.reservations WHERE order_id = $1 AND status <> 'released'`, o.id).Scan(&leaked); err != nil {
				t.Fatal(err)
			}
			if leaked != 0 {
				t.Errorf("order %s (%s): reservation not released", o.id, o.expect)
			}
			var live int
			if err := db.QueryRow(context.Background(),
				`SELECT count(*) FROM shipping.shipments WHERE order_id = $1 AND status <> 'cancelled'`, o.id).Scan(&live); err != nil {
				t.Fatal(err)
			}
			if live != 0 {
				t.Errorf("order %s (%s): a shipment is still live", o.id, o.expect)
			}
		}
	}
	t.Logf("outcomes: %v", counts)
	available, reserved := stock(t, sku)
	if available != units-held || reserved != held {
		t.Errorf("stock of %s: available %d reserved %d; want %d and %d (successful orders hold %d)", sku, available, reserved, units-held, held, held)
	}
}

// TestPaymentsKilledMidFlight SIGKILLs the Payments process while at least
// 20 charges are in flight and restarts it 5 s later: every order still
// completes, and none is charged twice.
func TestPaymentsKilledMidFlight(t *testing.T) {
	db := stacktest.DB(t, "orders")
	sku := testSKU(t, db, "kill")
	root := stacktest.Root(t)
	stampede := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(stacktest.Bin(t), args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("stampede %v: %v\n%s", args, err, out)
		}
	}
	// A slow charge widens the window in which the kill lands mid-request.
	stampede([]string{"STAMPEDE_PAYMENTS_CHARGE_LATENCY=1500ms"}, "restart", "payments")
	t.Cleanup(func() { stampede([]string{"STAMPEDE_PAYMENTS_CHARGE_LATENCY=0s"}, "restart", "payments") })

	const n = 80
	run := fmt.Sprintf("e2e-kill-%d", time.Now().UnixNano())
	var bodies []map[string]any
	var expects []string
	var qtys []int
	for i := range n {
		bodies = append(bodies, orderBody(fmt.Sprintf("u-%d", 1+i), sku, 1, "complete"))
		expects = append(expects, "complete")
		qtys = append(qtys, 1)
	}

	// Watch the in-flight gauge while the orders go in; kill at >= 20.
	metrics := stacktest.URL(config.Payments) + "/metrics"
	killed := make(chan float64, 1)
	stop := make(chan struct{})
	go func() {
		defer close(killed)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			if v := inFlight(metrics); v >= 20 {
				cmd := exec.Command(stacktest.Bin(t), "kill", "payments")
				cmd.Dir = root
				if err := cmd.Run(); err == nil {
					killed <- v
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	orders := placeAll(t, run, bodies, expects, qtys, 40)
	v, ok := <-killed
	close(stop)
	if !ok {
		t.Fatal("never saw 20 charges in flight at Payments within 60 s")
	}
	t.Logf("SIGKILLed payments with %v charges in flight", v)
	time.Sleep(5 * time.Second)
	stampede([]string{"STAMPEDE_PAYMENTS_CHARGE_LATENCY=0s"}, "restart", "payments")

	status := waitSettled(t, db, orders, 4*time.Minute)
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.id
	}
	money := charges(t, db, ids)
	for _, o := range orders {
		if s := status[o.id]; s != "in_transit" && s != "delivered" {
			t.Errorf("order %s: status %q, want in_transit", o.id, s)
		}
		if m := money[o.id]; m.captured != 1 || m.refunded != 0 {
			t.Errorf("order %s: %d charges captured, %d refunded; want exactly one, not refunded", o.id, m.captured, m.refunded)
		}
	}
}

// inFlight reads stampede_http_requests_in_flight of the charges service.
func inFlight(url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "stampede_http_requests_in_flight") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			return v
		}
	}
	return 0
}
