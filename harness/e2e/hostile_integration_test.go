//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/stacktest"
)

// TestProbe runs `stampede probe` against the stack: every hostile case is
// refused with the 4xx it wants, and a normal order then reaches in_transit.
func TestProbe(t *testing.T) {
	out := stacktest.Stampede(t, "probe")
	t.Logf("stampede probe:\n%s", out)
	for _, want := range []string{"600 KB X-Correlation-ID", "NUL in userId", "non-UTF-8 Idempotency-Key", "duplicate JSON key (userId twice)",
		"total over what Payments charges", "1 MiB body", "101 items", "body trickled 1 byte / 500 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("the probe's output has no case %q", want)
		}
	}
	if strings.Contains(out, "FAIL") || !strings.Contains(out, ": in_transit in ") && !strings.Contains(out, ": delivered in ") {
		t.Errorf("the probe failed a case or the normal order did not complete")
	}
}

// send sends method url, as JSON, with an optional Idempotency-Key and
// returns the status and body (stacktest's transport adds the service token).
func send(t *testing.T, method, url, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	var v T
	code, b := send(t, http.MethodGet, url, "")
	if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("GET %s = %d %s", url, code, b)
	}
	return v
}

// TestDirectUndoOfTheSagasWorkIsRefused: while an order waits for its
// delivery, refunding its charge, cancelling its shipment or releasing its
// stock by a direct call to the service is refused (409 saga_owned naming
// the order) and changes nothing, so the order, once delivered, ends
// delivered with its charge captured, its stock held and its shipment
// delivered: never "delivered" with the money given back or nothing sent.
func TestDirectUndoOfTheSagasWorkIsRefused(t *testing.T) {
	db := stacktest.DB(t, "orders")
	sku := testSKU(t, db, "outside")
	id := place(t, fmt.Sprintf("e2e-outside-%d", time.Now().UnixNano()), orderBody("u-outside", sku, 1, "complete"))
	if id == "" {
		t.FailNow()
	}
	if st := waitSettled(t, db, []placed{{id: id, expect: "complete", qty: 1}}, 60*time.Second)[id]; st != "in_transit" {
		t.Fatalf("order %s is %q, want in_transit (waiting for its delivery)", id, st)
	}

	inv, pay, ship := stacktest.URL(config.Inventory), stacktest.URL(config.Payments), stacktest.URL(config.Shipping)
	rs := getJSON[inventory.ReservationList](t, inv+"/v1/reservations?orderId="+id)
	cs := getJSON[payment.ChargeList](t, pay+"/v1/charges?orderId="+id)
	ss := getJSON[shipping.ShipmentList](t, ship+"/v1/shipments?orderId="+id)
	if len(rs.Reservations) != 1 || len(cs.Charges) != 1 || len(ss.Shipments) != 1 {
		t.Fatalf("the order's work: %d reservations, %d charges, %d shipments; want one each", len(rs.Reservations), len(cs.Charges), len(ss.Shipments))
	}
	r, c, s := rs.Reservations[0], cs.Charges[0], ss.Shipments[0]
	for _, tt := range []struct{ name, url, key, field string }{
		{"refund the charge by id", pay + "/v1/charges/" + c.ChargeID + "/refunds", "", "id"},
		{"refund by order id", pay + "/v1/refunds?orderId=" + id, "", "orderId"},
		{"refund by order id under another key", pay + "/v1/refunds?orderId=" + id, "support-refund-1", "orderId"},
		{"cancel the shipment by id", ship + "/v1/shipments/" + s.ShipmentID + "/cancel", "", "id"},
		{"cancel the shipment by order id", ship + "/v1/shipments/cancel?orderId=" + id, "", "orderId"},
		{"release the stock by id", inv + "/v1/reservations/" + r.ReservationID + "/release", "", "id"},
		{"release the stock by order id", inv + "/v1/reservations/release?orderId=" + id, "", "orderId"},
	} {
		code, b := send(t, http.MethodPost, tt.url, tt.key)
		if code != http.StatusConflict || !bytes.Contains(b, []byte(`"error":"`+idempotency.CodeSagaOwned+`"`)) ||
			!bytes.Contains(b, []byte(`"field":"`+tt.field+`"`)) || !bytes.Contains(b, []byte(id)) {
			t.Errorf("%s = %d %s, want 409 saga_owned naming %s and the order", tt.name, code, b, tt.field)
		}
	}

	if code, b := send(t, http.MethodPost, ship+"/v1/shipments/"+s.ShipmentID+"/deliver", ""); code != http.StatusOK {
		t.Fatalf("deliver = %d %s", code, b)
	}
	deadline := time.Now().Add(60 * time.Second)
	var status string
	for status != "delivered" {
		if time.Now().After(deadline) {
			t.Fatalf("order %s is %q 60 s after its delivery, want delivered", id, status)
		}
		time.Sleep(200 * time.Millisecond)
		if err := db.QueryRow(context.Background(), "SELECT status FROM orders.orders WHERE id = $1", id).Scan(&status); err != nil {
			t.Fatal(err)
		}
	}
	cs = getJSON[payment.ChargeList](t, pay+"/v1/charges?orderId="+id)
	rs = getJSON[inventory.ReservationList](t, inv+"/v1/reservations?orderId="+id)
	ss = getJSON[shipping.ShipmentList](t, ship+"/v1/shipments?orderId="+id)
	if c := cs.Charges[0]; c.Status != payment.StatusCaptured || len(c.Refunds) != 0 {
		t.Errorf("delivered order's charge: %s with %d refunds, want captured, none", c.Status, len(c.Refunds))
	}
	if r := rs.Reservations[0]; r.Status != inventory.StatusReserved {
		t.Errorf("delivered order's reservation: %s, want reserved", r.Status)
	}
	if s := ss.Shipments[0]; s.Status != shipping.StatusDelivered {
		t.Errorf("delivered order's shipment: %s, want delivered", s.Status)
	}
}

// TestFrozenOrdersTableIs503 holds an ACCESS EXCLUSIVE lock on the orders
// table (PostgreSQL frozen for the Orders API: every read and write of it
// waits) and checks that placing and reading an order is answered 503 with
// Retry-After at the request deadline, not left hanging; once the lock is
// gone the same order goes through. The locking session ends itself after
// 30 s idle in its transaction, so a test killed meanwhile cannot leave the
// table locked.
func TestFrozenOrdersTableIs503(t *testing.T) {
	ctx := context.Background()
	db := stacktest.DB(t, "orders")
	sku := testSKU(t, db, "frozen")
	known := place(t, fmt.Sprintf("e2e-frozen-known-%d", time.Now().UnixNano()), orderBody("u-frozen", sku, 1, "complete"))

	conn, err := pgx.Connect(ctx, config.PostgresURL())
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET idle_in_transaction_session_timeout = '30s'"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE orders.orders IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	body, _ := json.Marshal(orderBody("u-frozen", sku, 1, "complete"))
	key := fmt.Sprintf("e2e-frozen-%d", time.Now().UnixNano())
	post := func() (*http.Response, []byte, time.Duration) {
		req, _ := http.NewRequest(http.MethodPost, stacktest.URL(config.Orders)+"/v1/orders", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("POST /v1/orders while PostgreSQL is frozen: %v (want a 503, not a hung client)", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b, time.Since(start)
	}
	resp, b, took := post()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || took > 10*time.Second {
		t.Fatalf("POST while frozen = %d (Retry-After %q) %s after %s, want 503 with Retry-After within the 5 s request deadline",
			resp.StatusCode, resp.Header.Get("Retry-After"), b, took)
	}
	start := time.Now()
	code, b := send(t, http.MethodGet, stacktest.URL(config.Orders)+"/v1/orders/"+known, "")
	if code != http.StatusServiceUnavailable || time.Since(start) > 10*time.Second {
		t.Fatalf("GET while frozen = %d %s after %s, want 503 within the request deadline", code, b, time.Since(start))
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	resp, b, _ = post() // the same key: the refused attempt left nothing behind
	var created struct{ OrderID string }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &created) != nil || created.OrderID == "" {
		t.Fatalf("POST after the lock = %d %s, want 202", resp.StatusCode, b)
	}
	st := waitSettled(t, db, []placed{{id: created.OrderID, expect: "complete", qty: 1}, {id: known, expect: "complete", qty: 1}}, 60*time.Second)
	for _, id := range []string{created.OrderID, known} {
		if !settled("complete", st[id]) {
			t.Errorf("order %s is %q after the lock, want in_transit", id, st[id])
		}
	}
}

// TestDeadLetterTopicListAndReplay: a record the orchestrators cannot
// decode, written to the stack's orders topic, lands on orders.dlq, where
// `stampede deadletter list` shows it with its source and reason; `replay`
// produces it back to its source partition, where it is dead-lettered
// again, marked as the replay of the first.
func TestDeadLetterTopicListAndReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kafka.BaseOpts("e2e-deadletter", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	marker := fmt.Sprintf("e2e-poison-%d", time.Now().UnixNano())
	poison := &kgo.Record{Topic: event.TopicOrders, Key: []byte(marker), Value: []byte("{not an envelope " + marker)}
	if err := cl.ProduceSync(ctx, poison).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list := func() []deadletter.Letter {
		var out struct{ Topics []deadletter.Letter }
		if err := json.Unmarshal([]byte(stacktest.Stampede(t, "deadletter", "--schemas", "", "--json", "list")), &out); err != nil {
			t.Fatalf("deadletter list --json: %v", err)
		}
		var mine []deadletter.Letter
		for _, l := range out.Topics {
			if l.SourceTopic == event.TopicOrders && l.SourcePartition == poison.Partition && l.SourceOffset >= poison.Offset {
				mine = append(mine, l)
			}
		}
		return mine
	}
	var first []deadletter.Letter
	for deadline := time.Now().Add(60 * time.Second); len(first) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the poison record never reached orders.dlq")
		}
		time.Sleep(500 * time.Millisecond)
		first = list()
	}
	l := first[0]
	if l.SourceOffset != poison.Offset || !strings.Contains(l.Reason, "envelope") || l.Bytes != len(poison.Value) || l.Replayable() != "" {
		t.Fatalf("listed %+v, want orders/%d@%d, the reason naming the envelope, %d bytes, replayable", l, poison.Partition, poison.Offset, len(poison.Value))
	}
	out := stacktest.Stampede(t, "deadletter", "replay", l.ID)
	if !strings.Contains(out, l.ID+" -> orders/") {
		t.Fatalf("deadletter replay %s: %s", l.ID, out)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		var again *deadletter.Letter
		for _, x := range list() {
			if x.ReplayedFrom == l.ID {
				again = &x
			}
		}
		if again != nil {
			if again.SourcePartition != poison.Partition || again.SourceOffset <= poison.Offset {
				t.Errorf("the replay was read from orders/%d@%d, want a later offset of partition %d", again.SourcePartition, again.SourceOffset, poison.Partition)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replayed record was not dead-lettered again")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
