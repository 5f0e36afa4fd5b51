//go:build integration

package analytics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/analytics"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

// TestRouterOnTheRealBroker runs the router against the stack's Kafka on
// topics and a group of its own: every event reaches the right targets, each
// exactly once, undecodable records reach the DLQ, and everything is committed.
func TestRouterOnTheRealBroker(t *testing.T) {
	u := uuid.NewString()[:8]
	in, out, dlq, group := "it-analytics-in-"+u, "it-analytics-hv-"+u, "it-analytics-dlq-"+u, "it-analytics-"+u
	brokers := config.KafkaBrokers()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	admin, err := kgo.NewClient(kafka.BaseOpts("analytics-it-admin", brokers)...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(ctx, admin, []kafka.TopicSpec{{Name: in, Partitions: 3}, {Name: out, Partitions: 3}, {Name: dlq, Partitions: 1}}, 1); err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adm := kadm.NewClient(admin)
		adm.DeleteGroups(ctx, group)
		adm.DeleteTopics(ctx, in, out, dlq)
	})

	var mu sync.Mutex
	hooked := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hooked[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer hook.Close()

	rules, err := analytics.ParseRules([]byte(fmt.Sprintf(`
topics: [%[1]s]
rules:
  - name: high-value-orders
    topics: [%[1]s]
    pattern:
      type: [analytics.order_created]
      data: {totalCents: [{numeric: [">", 50000]}]}
    targets:
      - kafka: {topic: %[2]s}
      - webhook: {url: "%[3]s"}
  - name: failed-orders
    topics: [%[1]s]
    pattern:
      type: [analytics.order_outcome]
      data: {status: [failed, cancelled]}
    targets:
      - file: {path: failed-orders.jsonl}
`, in, out, hook.URL)), analytics.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Only the test's own topic: the shared analytics topic belongs to the stack's router.
	cl, err := kgo.NewClient(append(kafka.BaseOpts("analytics-it", brokers), analytics.ConsumerOpts(group, []string{in})...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	targets, err := analytics.BuildTargets(rules, analytics.BuildOptions{Client: cl, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer analytics.CloseTargets(targets)

	// Events in: 20 above $500, 20 at or below, 10 failed/cancelled, 10 completed, 2 undecodable.
	var recs []*kgo.Record
	high, failed := map[string]bool{}, map[string]bool{}
	add := func(p event.Payload, source string) event.Envelope {
		env, err := event.New(p, source, "it-"+u, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(env.ID), Value: b, Headers: kafka.EventHeaders(env)})
		return env
	}
	for i := range 20 {
		env := add(event.AnalyticsOrder{OrderID: fmt.Sprintf("o-%s-h%d", u, i), UserID: "u-it", TotalCents: 50001 + int64(i), Currency: "USD", ItemCount: 1, Country: "US"}, "order-service")
		high[env.ID] = true
		add(event.AnalyticsOrder{OrderID: fmt.Sprintf("o-%s-l%d", u, i), UserID: "u-it", TotalCents: 50000 - int64(i), Currency: "USD", ItemCount: 1, Country: "US"}, "order-service")
	}
	for i := range 20 {
		status := []string{"failed", "cancelled", "completed", "completed"}[i%4]
		env := add(event.AnalyticsOutcome{OrderID: fmt.Sprintf("o-%s-x%d", u, i), UserID: "u-it", Status: status, TotalCents: 100, Currency: "USD"}, "saga")
		if status == "failed" || status == "cancelled" {
			failed[env.ID] = true
		}
	}
	recs = append(recs, &kgo.Record{Topic: in, Value: []byte("not json")}, &kgo.Record{Topic: in, Value: []byte(`{"id":"x"}`)})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	r := &analytics.Router{Client: cl, Group: group, Rules: rules, Targets: targets, DLQ: dlq,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: analytics.NewMetrics(prometheus.NewRegistry()), Kafka: kafka.NewMetrics(prometheus.NewRegistry())}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	adm := kadm.NewClient(admin)
	deadline := time.Now().Add(60 * time.Second)
	for {
		offs, err := adm.FetchOffsets(ctx, group)
		var sum int64
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == in && o.Err == nil {
					sum += o.At
				}
			})
		}
		if sum == int64(len(recs)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of %d records in 60 s", sum, len(recs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	<-done

	// Kafka target: each high-value event exactly once.
	routed := readAll(t, brokers, out, len(high))
	count := map[string]int{}
	for _, rec := range routed {
		env, err := event.Decode(rec.Value)
		if err != nil || !high[env.ID] {
			t.Fatalf("routed record %s (err %v) is not a high-value order", rec.Value, err)
		}
		count[env.ID]++
	}
	if len(routed) != len(high) || len(count) != len(high) {
		t.Fatalf("%s has %d records (%d distinct), want each of %d once", out, len(routed), len(count), len(high))
	}
	// Webhook: each high-value event exactly once.
	mu.Lock()
	for id := range high {
		if hooked[id] != 1 {
			t.Fatalf("webhook got %s %d times, want 1", id, hooked[id])
		}
	}
	if len(hooked) != len(high) {
		t.Fatalf("webhook got %d distinct events, want %d", len(hooked), len(high))
	}
	mu.Unlock()
	// File: each failed or cancelled outcome exactly once.
	f, err := os.Open(filepath.Join(dir, "failed-orders.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		env, err := event.Decode(sc.Bytes())
		if err != nil || !failed[env.ID] {
			t.Fatalf("file line %s (err %v) is not a failed outcome", sc.Text(), err)
		}
		lines[env.ID]++
	}
	if len(lines) != len(failed) {
		t.Fatalf("file has %d distinct events, want %d", len(lines), len(failed))
	}
	for id, n := range lines {
		if n != 1 {
			t.Fatalf("file has %s %d times, want 1", id, n)
		}
	}
	// DLQ: the two undecodable records, each with a reason.
	dead := readAll(t, brokers, dlq, 2)
	if len(dead) != 2 {
		t.Fatalf("DLQ has %d records, want 2", len(dead))
	}
	for _, rec := range dead {
		if kafka.Header(rec, deadletter.HeaderReason) == "" {
			t.Fatalf("DLQ record %q has no reason", rec.Value)
		}
	}
}

// readAll reads topic from its start, read_committed, until it has more than
// want records or a quiet half second after reaching want.
func readAll(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(kafka.BaseOpts("analytics-it-reader", brokers),
		kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(15 * time.Second)
	var quietUntil time.Time
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
		if len(got) > want {
			break
		}
		if len(got) == want {
			if quietUntil.IsZero() {
				quietUntil = time.Now().Add(500 * time.Millisecond)
			} else if time.Now().After(quietUntil) {
				break
			}
		}
	}
	return got
}
