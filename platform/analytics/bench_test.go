package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

// benchRules is a realistic rules set: the two default rules plus eight
// more using every operator, so each event is tested against ten patterns.
const benchRules = `
rules:
  - name: high-value-orders
    pattern:
      type: [analytics.order_created]
      data: {totalCents: [{numeric: [">", 50000]}]}
    targets: [{kafka: {topic: analytics.high-value}}]
  - name: failed-orders
    pattern:
      type: [analytics.order_outcome]
      data: {status: [failed, cancelled]}
    targets: [{file: {path: failed-orders.jsonl}}]
  - name: big-baskets
    pattern:
      type: [analytics.order_created]
      data: {itemCount: [{numeric: [">=", 10, "<", 100]}]}
    targets: [{kafka: {topic: analytics.big-baskets}}]
  - name: non-us
    pattern:
      type: [{prefix: analytics.order}]
      data: {country: [{anything-but: [US, CA]}]}
    targets: [{kafka: {topic: analytics.intl}}]
  - name: eur
    pattern:
      data: {currency: [{equals-ignore-case: eur}]}
    targets: [{kafka: {topic: analytics.eur}}]
  - name: test-users
    pattern:
      data: {userId: [{prefix: test-}, {suffix: -qa}]}
    targets: [{kafka: {topic: analytics.test}}]
  - name: payment-declines
    pattern:
      type: [analytics.order_outcome]
      data: {reason: [{prefix: {equals-ignore-case: "payment"}}], status: [failed]}
    targets: [{kafka: {topic: analytics.declines}}]
  - name: no-country
    pattern:
      type: [analytics.order_created]
      data: {country: [{exists: false}]}
    targets: [{kafka: {topic: analytics.data-quality}}]
  - name: saga-or-orders
    pattern:
      $or:
        - source: [saga]
        - data: {totalCents: [{numeric: ["=", 0]}]}
    targets: [{kafka: {topic: analytics.audit}}]
  - name: not-internal
    pattern:
      source: [{anything-but: {prefix: internal-}}]
      type: [{suffix: _outcome}]
    targets: [{kafka: {topic: analytics.outcomes}}]
`

// benchRecords is a mix like the demo's: 4 orders created per outcome,
// varied totals, countries and statuses.
func benchRecords(b *testing.B, n int) []*kgo.Record {
	countries := []string{"US", "US", "US", "DE", "FR", "CA", "JP"}
	statuses := []string{"completed", "completed", "completed", "failed", "cancelled"}
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		var env event.Envelope
		var err error
		if i%5 == 4 {
			env, err = event.New(event.AnalyticsOutcome{OrderID: fmt.Sprintf("o-%d", i), UserID: fmt.Sprintf("u-%d", i%997),
				Status: statuses[i%len(statuses)], Reason: "payment declined", TotalCents: int64(i%1000) * 100, Currency: "USD"}, "saga", "", time.Now())
		} else {
			env, err = event.New(event.AnalyticsOrder{OrderID: fmt.Sprintf("o-%d", i), UserID: fmt.Sprintf("u-%d", i%997),
				TotalCents: int64(i%1000) * 100, Currency: "USD", ItemCount: i % 12, Country: countries[i%len(countries)]}, "order-service", "", time.Now())
		}
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, record(b, event.TopicAnalytics, env))
	}
	return recs
}

// BenchmarkRoute measures decode + match against ten rules + batching per
// target, the router's CPU work per event (targets excluded).
//
//	go test -run '^$' -bench Route -cpu 1 ./platform/analytics/
func BenchmarkRoute(b *testing.B) {
	rules, err := ParseRules([]byte(benchRules), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := &Router{Rules: rules, Metrics: NewMetrics(prometheus.NewRegistry())}
	recs := benchRecords(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	matched := 0
	cpu0 := cpuTime()
	for b.Loop() {
		out := r.Route(recs)
		for _, ds := range out.Batches {
			matched += len(ds)
		}
	}
	b.StopTimer()
	events := float64(b.N) * float64(len(recs))
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(events/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
	b.ReportMetric(float64(matched)/events, "deliveries/event")
}

// BenchmarkMatch measures the pattern matcher alone on decoded events.
func BenchmarkMatch(b *testing.B) {
	rules, err := ParseRules([]byte(benchRules), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(b, 1000)
	docs := make([]map[string]any, len(recs))
	for i, rec := range recs {
		_, docs[i], _ = decode(rec.Value)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		for _, d := range docs {
			for _, rule := range rules.Rules {
				rule.Matches(event.TopicAnalytics, d)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*float64(len(docs))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*float64(len(docs))/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

type countTarget struct{ n int }

func (c *countTarget) Deliver(_ context.Context, ds []Delivery) error { c.n += len(ds); return nil }

// BenchmarkRouterKfake runs the whole router (poll, route, deliver to no-op
// targets, commit) on an in-process kfake broker; the broker shares the CPU.
//
//	go test -run '^$' -bench RouterKfake -cpu 1 -benchtime 20000x ./platform/analytics/
func BenchmarkRouterKfake(b *testing.B) {
	rules, err := ParseRules([]byte(benchRules), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, event.TopicAnalytics))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(append(kafka.BaseOpts("bench-producer", c.ListenAddrs()), kgo.DefaultProduceTopic(event.TopicAnalytics))...)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	recs := benchRecords(b, min(b.N, 5000))
	for i := 0; i < b.N; i += len(recs) {
		batch := recs[:min(len(recs), b.N-i)]
		fresh := make([]*kgo.Record, len(batch))
		for j, r := range batch {
			fresh[j] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		if err := prod.ProduceSync(context.Background(), fresh...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	targets := map[string]Target{}
	for id := range rules.Targets {
		targets[id] = &countTarget{}
	}
	cl, err := kgo.NewClient(append(kafka.BaseOpts("bench-router", c.ListenAddrs()), ConsumerOpts("bench", rules.ConsumedTopics())...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	r := &Router{Client: cl, Group: "bench", Rules: rules, Targets: targets, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: NewMetrics(prometheus.NewRegistry()), Kafka: kafka.NewMetrics(prometheus.NewRegistry())}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	go func() { done <- r.Run(ctx) }()
	adm, err := kgo.NewClient(kafka.BaseOpts("bench-admin", c.ListenAddrs())...)
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	for {
		if committedSum(adm, "bench") >= int64(b.N) {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatal("router did not commit everything in 5 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	// Router and in-process broker together, per second of CPU.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
}

// cpuTime is the CPU time (user+system) this process used so far: on a
// shared machine, events per CPU-second is steadier than per wall second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func committedSum(cl *kgo.Client, group string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			sum += o.At
		}
	})
	return sum
}
