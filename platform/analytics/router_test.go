package analytics

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(3, event.TopicAnalytics, "analytics.high-value"),
		kfake.SeedTopics(1, event.TopicAnalyticsDLQ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(kafka.BaseOpts("analytics-test", brokers), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// committed sums the group's committed offsets on topic.
func committed(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			sum += o.At
		}
	})
	return sum
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readTopic returns every record of topic (read_committed, from the start).
func readTopic(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, brokers, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	var got []*kgo.Record
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
		if len(got) > want {
			break
		}
		if len(got) == want {
			// Give a duplicate the chance to show up before concluding.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
			cancel()
			break
		}
	}
	return got
}

func startRouter(t *testing.T, brokers []string, rules *Rules, targets map[string]Target, group string) *kgo.Client {
	t.Helper()
	cl := newClient(t, brokers, ConsumerOpts(group, rules.ConsumedTopics())...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Router{Client: cl, Group: group, Rules: rules, Targets: targets,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry()),
		Kafka: kafka.NewMetrics(prometheus.NewRegistry())}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("router did not stop")
		}
	})
	return cl
}

func TestRouterRoutesEachEventToItsTargets(t *testing.T) {
	brokers := newCluster(t)
	var (
		mu       sync.Mutex
		hooked   = map[string]int{}
		failures atomic.Int32
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failures.Add(1) <= 2 { // the first two requests fail: the poll is retried
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		mu.Lock()
		hooked[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer hook.Close()
	rules, err := ParseRules([]byte(`
rules:
  - name: high-value-orders
    pattern:
      type: [analytics.order_created]
      data: {totalCents: [{numeric: [">", 50000]}]}
    targets:
      - kafka: {topic: analytics.high-value}
      - webhook: {url: "`+hook.URL+`", attempts: 1}
  - name: failed-orders
    pattern:
      detail-type: [analytics.order_outcome]
      detail: {status: [failed, cancelled]}
    targets:
      - file: {path: failed.jsonl}
`), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prod := newClient(t, brokers)
	targets, err := BuildTargets(rules, BuildOptions{Client: prod, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseTargets(targets)

	var recs []*kgo.Record
	high := map[string]bool{}
	failed := map[string]bool{}
	for i := range 5 {
		env := orderEnvelope(t, "o-high-"+string(rune('a'+i)), 50001+int64(i)*1000)
		high[env.ID] = true
		recs = append(recs, record(t, event.TopicAnalytics, env))
		recs = append(recs, record(t, event.TopicAnalytics, orderEnvelope(t, "o-low", 50000))) // bound is exclusive
	}
	for _, st := range []string{"failed", "cancelled", "failed", "completed", "shipped"} {
		env := outcomeEnvelope(t, "o-"+st, st)
		if st == "failed" || st == "cancelled" {
			failed[env.ID] = true
		}
		recs = append(recs, record(t, event.TopicAnalytics, env))
	}
	recs = append(recs,
		&kgo.Record{Topic: event.TopicAnalytics, Value: []byte("{not json")},
		&kgo.Record{Topic: event.TopicAnalytics, Value: []byte(`{"type":"analytics.order_created","version":1,"source":"x","occurredAt":"2026-01-01T00:00:00Z","data":{}}`)},
	)
	produce(t, prod, recs...)

	cl := startRouter(t, brokers, rules, targets, "router-test")
	waitFor(t, "every record committed", 20*time.Second, func() bool {
		return committed(t, cl, "router-test", event.TopicAnalytics) == int64(len(recs))
	})

	// Kafka target: each high-value event exactly once, although the poll was retried.
	got := readTopic(t, brokers, "analytics.high-value", len(high))
	seen := map[string]int{}
	for _, r := range got {
		env, err := event.Decode(r.Value)
		if err != nil {
			t.Fatalf("routed record: %v", err)
		}
		seen[env.ID]++
		if kafka.Header(r, HeaderRule) != "high-value-orders" || kafka.Header(r, event.HeaderEventType) != event.TypeAnalyticsOrder {
			t.Fatalf("routed record headers = %v", r.Headers)
		}
	}
	if len(got) != len(high) || len(seen) != len(high) {
		t.Fatalf("high-value topic has %d records (%d distinct), want %d once each", len(got), len(seen), len(high))
	}
	for id := range high {
		if seen[id] != 1 {
			t.Fatalf("event %s on the high-value topic %d times, want 1", id, seen[id])
		}
	}
	if failures.Load() <= 2 {
		t.Fatal("the webhook never failed: the retry path was not exercised")
	}
	// Webhook: every high-value event acknowledged at least once (at-least-once, deduped by Idempotency-Key).
	mu.Lock()
	for id := range high {
		if hooked[id] == 0 {
			t.Fatalf("webhook never acknowledged %s (got %v)", id, hooked)
		}
	}
	if len(hooked) != len(high) {
		t.Fatalf("webhook got %d distinct events, want %d", len(hooked), len(high))
	}
	mu.Unlock()

	// File target: each failed/cancelled outcome once.
	lines := readLines(t, filepath.Join(dir, "failed.jsonl"))
	if len(lines) != len(failed) {
		t.Fatalf("file has %d lines, want %d", len(lines), len(failed))
	}
	for _, l := range lines {
		env, err := event.Decode([]byte(l))
		if err != nil || !failed[env.ID] {
			t.Fatalf("file line %q (err %v) is not one of the failed outcomes", l, err)
		}
	}

	// DLQ: the two undecodable records, with a reason.
	dlq := readTopic(t, brokers, event.TopicAnalyticsDLQ, 2)
	if len(dlq) != 2 {
		t.Fatalf("DLQ has %d records, want 2", len(dlq))
	}
	reasons := kafka.Header(dlq[0], deadletter.HeaderReason) + " | " + kafka.Header(dlq[1], deadletter.HeaderReason)
	if !strings.Contains(reasons, "not a JSON envelope") || !strings.Contains(reasons, "id: missing") {
		t.Fatalf("DLQ reasons = %q", reasons)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// gateTarget blocks every Deliver until released.
type gateTarget struct {
	called  chan struct{}
	release chan struct{}
	got     atomic.Int32
}

func (g *gateTarget) Deliver(ctx context.Context, ds []Delivery) error {
	select {
	case g.called <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.got.Add(int32(len(ds)))
	return nil
}

func TestRouterCommitsOnlyAfterTargetsAcknowledge(t *testing.T) {
	brokers := newCluster(t)
	rules, err := ParseRules([]byte(`
rules:
  - name: all-orders
    pattern: {type: [analytics.order_created]}
    targets: [{webhook: {url: "http://127.0.0.1:1/unused"}}]
`), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateTarget{called: make(chan struct{}, 1), release: make(chan struct{})}
	targets := map[string]Target{"webhook:http://127.0.0.1:1/unused": gate}
	prod := newClient(t, brokers)
	var recs []*kgo.Record
	for range 4 {
		recs = append(recs, record(t, event.TopicAnalytics, orderEnvelope(t, "o-1", 100)))
	}
	produce(t, prod, recs...)

	cl := startRouter(t, brokers, rules, targets, "gate-test")
	select {
	case <-gate.called:
	case <-time.After(10 * time.Second):
		t.Fatal("the target was never called")
	}
	// The target holds the batch: nothing may be committed yet.
	if got := committed(t, cl, "gate-test", event.TopicAnalytics); got > 0 {
		t.Fatalf("committed %d offsets before the target acknowledged", got)
	}
	close(gate.release)
	waitFor(t, "commit after the acknowledgement", 10*time.Second, func() bool {
		return committed(t, cl, "gate-test", event.TopicAnalytics) == 4
	})
	if got := gate.got.Load(); got != 4 {
		t.Fatalf("target got %d events, want 4", got)
	}
}

func TestRouteJSONView(t *testing.T) {
	env := orderEnvelope(t, "o-9", 70000)
	_, doc, err := decode(record(t, "analytics", env).Value)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	for _, want := range []string{`"type":"analytics.order_created"`, `"source":"order-service"`, `"totalCents":70000`, `"id":"` + env.ID + `"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("pattern view %s lacks %s", b, want)
		}
	}
}
