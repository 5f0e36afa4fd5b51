package analytics

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
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
		if failures.Add(1) <= 2 { // the first two requests fail: retried within the webhook's attempts
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
      - webhook: {url: "`+hook.URL+`", attempts: 3}
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
	// The file target fails its first batch: the poll is retried, and what
	// the other targets acknowledged is not sent again.
	targets["file:failed.jsonl"] = &flakyTarget{Target: targets["file:failed.jsonl"], fails: 1}

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
	if ft := targets["file:failed.jsonl"].(*flakyTarget); ft.calls.Load() < 2 {
		t.Fatal("the file target was called once: the poll was not retried")
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
// flakyTarget fails its first fails calls, then delivers through Target.
type flakyTarget struct {
	Target
	fails int32
	calls atomic.Int32
}

func (f *flakyTarget) Deliver(ctx context.Context, ds []Delivery) error {
	if f.calls.Add(1) <= f.fails {
		return errors.New("flaky: not now")
	}
	return f.Target.Deliver(ctx, ds)
}

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

// deadLetters is the router's stampede_analytics_dead_letters_total for cause.
func deadLetters(t *testing.T, reg *prometheus.Registry, cause string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "stampede_analytics_dead_letters_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cause" && l.GetValue() == cause {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// runRouter runs a router on rules with targets built from them and
// returns its consumer client and metrics registry.
func runRouter(t *testing.T, brokers []string, rules *Rules, group string) (*kgo.Client, *prometheus.Registry) {
	t.Helper()
	targets, err := BuildTargets(rules, BuildOptions{Client: newClient(t, brokers), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CloseTargets(targets) })
	cl := newClient(t, brokers, ConsumerOpts(group, rules.ConsumedTopics())...)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Router{Client: cl, Group: group, Rules: rules, Targets: targets,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(reg), Kafka: kafka.NewMetrics(reg)}
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
	return cl, reg
}

// A webhook target that answers 500, or hangs, never stops the router: the
// events it cannot take go to analytics.dlq with the reason after its
// attempts (or its batch timeout), the offsets move on, and the events for
// a healthy target, before and after, are delivered.
func TestRouterDeadLettersWhatAWebhookCannotTake(t *testing.T) {
	for _, tt := range []struct {
		name, cause, reason, timeout string
		bad                          http.HandlerFunc
	}{
		{"answers 500", CauseExhausted, "answered 500", "200ms", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
		{"hangs", CauseTimeout, "not acknowledged within", "1m", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // then the server notices the client hang up
			<-r.Context().Done()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			brokers := newCluster(t)
			bad := httptest.NewServer(tt.bad)
			defer bad.Close()
			var mu sync.Mutex
			good := map[string]bool{}
			goodSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				good[r.Header.Get("Idempotency-Key")] = true
				mu.Unlock()
			}))
			defer goodSrv.Close()
			rules, err := ParseRules([]byte(`
rules:
  - name: outcomes-to-bad-hook
    pattern: {type: [analytics.order_outcome]}
    targets: [{name: bad-hook, webhook: {url: "`+bad.URL+`", attempts: 2, timeout: `+tt.timeout+`, batchTimeout: 1s}}]
  - name: orders-to-good-hook
    pattern: {type: [analytics.order_created]}
    targets: [{webhook: {url: "`+goodSrv.URL+`"}}]
`), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			prod := newClient(t, brokers)
			before := orderEnvelope(t, "o-before", 100)
			poison := outcomeEnvelope(t, "o-poison", "failed")
			produce(t, prod, record(t, event.TopicAnalytics, before), record(t, event.TopicAnalytics, poison))
			cl, reg := runRouter(t, brokers, rules, "dlq-"+tt.cause)
			waitFor(t, "both records committed", 20*time.Second, func() bool {
				return committed(t, cl, "dlq-"+tt.cause, event.TopicAnalytics) == 2
			})
			dlq := readTopic(t, brokers, event.TopicAnalyticsDLQ, 1)
			if len(dlq) != 1 {
				t.Fatalf("DLQ has %d records, want the one the bad webhook could not take", len(dlq))
			}
			reason := kafka.Header(dlq[0], deadletter.HeaderReason)
			if !strings.Contains(reason, "rule outcomes-to-bad-hook: target bad-hook") || !strings.Contains(reason, tt.reason) {
				t.Errorf("DLQ reason = %q, want the rule, the target and %q", reason, tt.reason)
			}
			if env, err := event.Decode(dlq[0].Value); err != nil || env.ID != poison.ID {
				t.Errorf("DLQ value is not the poison event (%v)", err)
			}
			if got := deadLetters(t, reg, tt.cause); got != 1 {
				t.Errorf("dead letters (cause %s) = %v, want 1", tt.cause, got)
			}

			after := orderEnvelope(t, "o-after", 100)
			produce(t, prod, record(t, event.TopicAnalytics, after))
			waitFor(t, "the order after the poison delivered and committed", 20*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return good[before.ID] && good[after.ID] && committed(t, cl, "dlq-"+tt.cause, event.TopicAnalytics) == 3
			})
		})
	}
}

// A dead letter the dead-letter topic itself refuses (over its size limit)
// is dropped with a log line and counted, and the router flows on.
func TestRouterDropsADeadLetterTheDLQRefuses(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, event.TopicAnalytics))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	prod := newClient(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	small := "2000"
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &small}, event.TopicAnalyticsDLQ); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
	}))
	defer hook.Close()
	rules, err := ParseRules([]byte(`
rules:
  - name: orders
    pattern: {type: [analytics.order_created]}
    targets: [{webhook: {url: "`+hook.URL+`"}}]
`), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := orderEnvelope(t, "o-next", 100)
	produce(t, prod,
		&kgo.Record{Topic: event.TopicAnalytics, Value: noise(5000)}, // undecodable, and too large for the DLQ even compressed
		record(t, event.TopicAnalytics, next))
	cl, reg := runRouter(t, brokers, rules, "dlq-refused")
	waitFor(t, "both records committed and the next one delivered", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[next.ID] && committed(t, cl, "dlq-refused", event.TopicAnalytics) == 2
	})
	if n := deadLetters(t, reg, "dropped"); n != 1 {
		t.Errorf("dropped dead letters = %v, want 1", n)
	}
}

// noise is n bytes that no compression shrinks much.
func noise(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}
