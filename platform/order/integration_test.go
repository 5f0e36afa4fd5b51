//go:build integration

package order_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/stacktest"
	"github.com/stampede-dev/stampede/platform/web"
)

func orderBody(user string) string {
	return fmt.Sprintf(`{"userId":%q,"currency":"USD","items":[{"sku":"SKU-00001","qty":2,"priceCents":1999},{"sku":"SKU-00002","qty":1,"priceCents":500}],
 "shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},
 "payment":{"method":"card","token":"tok_visa"}}`, user)
}

func post(t *testing.T, body, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, stacktest.URL(config.Orders)+"/v1/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(web.HeaderIdempotencyKey, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/orders: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := stacktest.DB(t, order.Schema).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestOrderCreatedOnTopicOnceWithAnalyticsInSameTransaction(t *testing.T) {
	cl := stacktest.Consumer(t, event.TopicOrders, event.TopicAnalytics)
	user := "u-it-" + uuid.NewString()[:8]
	code, resp := post(t, orderBody(user), "")
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %v, want 202", code, resp)
	}
	id := resp["orderId"].(string)

	mine := func(recs []*kgo.Record) (created, analytics []*kgo.Record) {
		for _, r := range recs {
			env, err := event.Decode(r.Value)
			if err != nil {
				continue
			}
			switch {
			case env.Type == event.TypeOrderCreated && r.Topic == event.TopicOrders:
				if oc, err := event.DecodeData[event.OrderCreated](env); err == nil && oc.OrderID == id {
					created = append(created, r)
				}
			case env.Type == event.TypeAnalyticsOrder && r.Topic == event.TopicAnalytics:
				if a, err := event.DecodeData[event.AnalyticsOrder](env); err == nil && a.OrderID == id {
					analytics = append(analytics, r)
				}
			}
		}
		return
	}
	// Wait for both, then keep reading a little to catch any duplicate.
	var seenAt time.Time
	recs := stacktest.Collect(cl, 15*time.Second, func(recs []*kgo.Record) bool {
		c, a := mine(recs)
		if len(c) > 0 && len(a) > 0 && seenAt.IsZero() {
			seenAt = time.Now()
		}
		return !seenAt.IsZero() && time.Since(seenAt) > 2*time.Second
	})
	created, analytics := mine(recs)
	if len(created) != 1 || len(analytics) != 1 {
		t.Fatalf("read_committed consumer saw %d order.created and %d analytics events for %s, want exactly 1 each", len(created), len(analytics), id)
	}
	c, a := created[0], analytics[0]
	if got := string(c.Key); got != user {
		t.Errorf("order.created key = %q, want the user id %q", got, user)
	}
	for k, want := range map[string]string{
		event.HeaderCorrelationID: id, event.HeaderSource: order.Source,
		event.HeaderEventType: event.TypeOrderCreated, event.HeaderEventVersion: "1",
	} {
		if got := kafka.Header(c, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if got := string(a.Key); got != id {
		t.Errorf("analytics key = %q, want the order id", got)
	}
	// One Kafka transaction: the same producer id and epoch wrote both.
	if c.ProducerID != a.ProducerID || c.ProducerEpoch != a.ProducerEpoch || c.ProducerID < 0 {
		t.Errorf("order.created (producer %d/%d) and analytics (producer %d/%d) were not written by one transactional producer",
			c.ProducerID, c.ProducerEpoch, a.ProducerID, a.ProducerEpoch)
	}
	env, _ := event.Decode(c.Value)
	oc, _ := event.DecodeData[event.OrderCreated](env)
	if oc.TotalCents != 2*1999+500 || oc.Currency != "USD" || len(oc.Items) != 2 {
		t.Errorf("order.created payload = %+v", oc)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	before := count(t, "SELECT count(*) FROM orders") + count(t, "SELECT count(*) FROM outbox")
	bodies := map[string]string{
		"qty 0":          strings.Replace(orderBody("u-1"), `"qty":2`, `"qty":0`, 1),
		"unknown field":  strings.Replace(orderBody("u-1"), `"userId"`, `"coupon":"x","userId"`, 1),
		"bad currency":   strings.Replace(orderBody("u-1"), `"USD"`, `"ZZZ"`, 1),
		"no token":       strings.Replace(orderBody("u-1"), `"token":"tok_visa"`, `"token":""`, 1),
		"bad country":    strings.Replace(orderBody("u-1"), `"US"`, `"USA"`, 1),
		"invalid json":   `{"userId":`,
		"fraction price": strings.Replace(orderBody("u-1"), `"priceCents":500`, `"priceCents":5.5`, 1),
	}
	for name, body := range bodies {
		code, resp := post(t, body, "")
		if code < 400 || code >= 500 {
			t.Errorf("%s: code %d, want 4xx (%v)", name, code, resp)
		}
	}
	if after := count(t, "SELECT count(*) FROM orders") + count(t, "SELECT count(*) FROM outbox"); after != before {
		t.Errorf("bad input wrote %d rows to orders/outbox", after-before)
	}
}

func TestIdempotencyKey(t *testing.T) {
	key := "it-" + uuid.NewString()
	body := orderBody("u-42")

	code1, r1 := post(t, body, key)
	code2, r2 := post(t, strings.ReplaceAll(body, "\n", ""), key) // same body, other formatting
	if code1 != http.StatusAccepted || code2 != http.StatusAccepted {
		t.Fatalf("first %d, replay %d; want 202 both", code1, code2)
	}
	if r1["orderId"] != r2["orderId"] {
		t.Fatalf("replay returned order %v, first was %v", r2["orderId"], r1["orderId"])
	}
	if n := count(t, "SELECT count(*) FROM orders WHERE idempotency_key = $1", key); n != 1 {
		t.Fatalf("%d orders for one key, want 1", n)
	}
	if n := count(t, "SELECT count(*) FROM outbox WHERE convert_from(value, 'UTF8')::jsonb #>> '{data,orderId}' = $1", r1["orderId"]); n != 2 {
		t.Fatalf("%d outbox rows for the order, want 2 (order.created + analytics): a replay must write nothing", n)
	}

	code3, r3 := post(t, orderBody("u-43"), key)
	if code3 != http.StatusUnprocessableEntity || r3["field"] != web.HeaderIdempotencyKey {
		t.Fatalf("same key, other body = %d %v; want 422 naming Idempotency-Key", code3, r3)
	}
}

func TestIdempotencyKeyInFlightIsConflict(t *testing.T) {
	key := "it-" + uuid.NewString()
	// Hold the key's lock as an in-flight request would.
	db := stacktest.DB(t, order.Schema)
	ctx := context.Background()
	conn, err := db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "idem:"+key); err != nil {
		t.Fatal(err)
	}
	code, resp := post(t, orderBody("u-44"), key)
	tx.Rollback(ctx)
	if code != http.StatusConflict {
		t.Fatalf("duplicate while in flight = %d %v, want 409", code, resp)
	}
	if code, _ := post(t, orderBody("u-44"), key); code != http.StatusAccepted {
		t.Fatalf("after the first finished = %d, want 202", code)
	}
}

func TestIdempotencyKeyRaceMakesOneOrder(t *testing.T) {
	key := "it-" + uuid.NewString()
	body := orderBody("u-45")
	var wg sync.WaitGroup
	codes := make([]int, 20)
	ids := make([]any, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r map[string]any
			codes[i], r = post(t, body, key)
			ids[i] = r["orderId"]
		}()
	}
	wg.Wait()
	var first any
	for i, c := range codes {
		switch c {
		case http.StatusAccepted:
			if first == nil {
				first = ids[i]
			} else if ids[i] != first {
				t.Errorf("two different orders for one key: %v and %v", first, ids[i])
			}
		case http.StatusConflict:
		default:
			t.Errorf("concurrent duplicate answered %d, want 202 or 409", c)
		}
	}
	if n := count(t, "SELECT count(*) FROM orders WHERE idempotency_key = $1", key); n != 1 {
		t.Fatalf("%d orders for one key under a race, want 1", n)
	}
}

func TestGetShowsOrderAndHistory(t *testing.T) {
	_, r := post(t, orderBody("u-46"), "")
	id := r["orderId"].(string)
	resp, err := http.Get(stacktest.URL(config.Orders) + "/v1/orders/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o order.Order
	json.NewDecoder(resp.Body).Decode(&o)
	if resp.StatusCode != 200 || o.OrderID != id || len(o.History) == 0 || o.History[0].Status != order.StatusPending {
		t.Fatalf("GET = %d %+v, want the order with a pending first history entry", resp.StatusCode, o)
	}
	resp, _ = http.Get(stacktest.URL(config.Orders) + "/v1/orders/" + uuid.NewString())
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET unknown = %d, want 404", resp.StatusCode)
	}
}

// TestProjectionNeverStallsOnOneEvent: status events the projection cannot
// apply (an order id no order can have, a record that is no event, an event
// PostgreSQL refuses: a NUL in its reason) must not stall it. The undecodable
// and the refused one go to the dead-letter topic with their reason; the next
// event on the same partition is still applied.
func TestProjectionNeverStallsOnOneEvent(t *testing.T) {
	user := fmt.Sprintf("u-proj-%d", time.Now().UnixNano())
	// Out of stock: the saga fails it early, with low sequence numbers.
	body := strings.Replace(orderBody(user), `"SKU-00002"`, `"SKU-OOS"`, 1)
	code, r := post(t, body, "")
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %v", code, r)
	}
	id := r["orderId"].(string)

	cl, err := kgo.NewClient(kafka.BaseOpts("projection-test", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dlq := stacktest.Consumer(t, event.TopicOrdersDLQ)
	now := time.Now()
	var recs []*kgo.Record
	for _, e := range []event.OrderStatusChanged{
		{OrderID: "not-a-uuid", UserID: user, Status: order.StatusProcessing, Seq: 1, At: now},
		{OrderID: id, UserID: user, Status: order.StatusFailed, Seq: 998, At: now, Reason: "nul \x00 in the reason"},
		{OrderID: id, UserID: user, Status: order.StatusCancelled, Seq: 999, At: now, Reason: "projection test"},
	} {
		env, err := event.New(e, "projection-test", id, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		// Same key as the order's own status events: same partition, in order.
		recs = append(recs, &kgo.Record{Topic: event.TopicOrderStatus, Key: []byte(user), Value: b, Headers: kafka.EventHeaders(env)})
	}
	garbage := &kgo.Record{Topic: event.TopicOrderStatus, Key: []byte(user), Value: []byte("{not json " + id),
		Headers: []kgo.RecordHeader{{Key: event.HeaderEventType, Value: []byte(event.TypeOrderStatusChanged)}}}
	recs = append([]*kgo.Record{recs[0], garbage}, recs[1:]...)
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(t, `SELECT count(*) FROM orders WHERE id = $1 AND status_seq = 999 AND failure_reason = 'projection test'`, id) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the event after the bad ones was not projected within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var reasons []string
	stacktest.Collect(dlq, 15*time.Second, func(rs []*kgo.Record) bool {
		reasons = reasons[:0]
		for _, r := range rs {
			if kafka.Header(r, deadletter.HeaderSourceTopic) == event.TopicOrderStatus && strings.Contains(string(r.Value), id) {
				reasons = append(reasons, kafka.Header(r, deadletter.HeaderReason))
			}
		}
		return len(reasons) >= 2
	})
	if len(reasons) != 2 || !strings.Contains(reasons[0], "JSON") || !strings.Contains(reasons[1], "22021") {
		t.Fatalf("dead letters of this test = %q, want the undecodable record and the one PostgreSQL refuses (SQLSTATE 22021)", reasons)
	}
}

// TestGetReadsOneSnapshot: while statuses are being recorded, every GET
// shows as its status the last entry of the history it shows. Read in two
// statements, a GET between a commit and its second read showed the new
// history beside the old status (a chaos run's k6 check failed on it).
func TestGetReadsOneSnapshot(t *testing.T) {
	_, r := post(t, orderBody("u-47"), "")
	id := r["orderId"].(string)
	store := order.NewStore(stacktest.DB(t, "orders"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		statuses := []string{order.StatusCompensating, order.StatusFailed}
		for i := 0; i < 400; i++ {
			err := store.SetStatus(ctx, id, statuses[i%2], "", time.Now())
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				// The order's own saga runs on the stack too: its projection
				// took the next history seq first. Write this status again.
				i--
				continue
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if reads < 50 {
				t.Fatalf("only %d reads while the statuses were written", reads)
			}
			return
		default:
		}
		o, err := store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		if last := o.History[len(o.History)-1].Status; o.Status != last {
			t.Fatalf("read %d: status %s beside a history ending in %s (%d entries)", reads, o.Status, last, len(o.History))
		}
	}
}
