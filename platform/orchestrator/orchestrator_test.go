package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/orchestrator"
	"github.com/stampede-dev/stampede/platform/orchestrator/orchestratortest"
	"github.com/stampede-dev/stampede/platform/saga"
)

type env struct {
	t     *testing.T
	c     *kfake.Cluster
	prod  *kgo.Client
	adm   *kadm.Client
	fake  *orchestratortest.Temporal
	group string
}

func newEnv(t *testing.T, opts ...kfake.Opt) *env {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1),
		kfake.SeedTopics(12, event.TopicOrders),
		kfake.SeedTopics(6, event.TopicShipping),
		kfake.SeedTopics(1, event.TopicOrdersDLQ),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(event.TopicOrders),
		kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &env{t: t, c: c, prod: prod, adm: kadm.NewClient(prod), fake: orchestratortest.New(), group: "test-orchestrator"}
}

// member is one running orchestrator consumer.
type member struct {
	reg  *prometheus.Registry
	m    *orchestrator.Metrics
	km   *kafka.Metrics
	stop func()
}

func (e *env) start(cfg orchestrator.Config) *member {
	e.t.Helper()
	cfg.Group = e.group
	cfg.RetryInitial = 10 * time.Millisecond
	cfg.RetryMax = 50 * time.Millisecond
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	mb := &member{reg: reg, m: orchestrator.NewMetrics(reg), km: kafka.NewMetrics(reg)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{e.t}, nil))
	}
	cons := orchestrator.New(cfg, e.fake, e.fake, log, mb.km, mb.m)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.c.ListenAddrs()...), kgo.WithHooks(mb.km)}, cons.Opts()...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx, cl) }()
	var stopped bool
	mb.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			e.t.Fatal("Run did not return within 20 s of cancel")
		}
		cl.Close()
	}
	e.t.Cleanup(mb.stop)
	return mb
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func order(id, user string) event.OrderCreated {
	return event.OrderCreated{
		OrderID: id, UserID: user, Currency: "EUR",
		Items:           []event.LineItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 500}},
		TotalCents:      1000,
		ShippingAddress: event.Address{Name: "A", Line1: "1 Road", City: "Paris", PostalCode: "75001", Country: "FR"},
		Payment:         event.Payment{Method: "card", Token: "tok_visa"},
		CreatedAt:       time.Now().UTC(),
	}
}

func record(t *testing.T, topic, key string, p event.Payload, cid string) *kgo.Record {
	t.Helper()
	ev, err := event.New(p, "test", cid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Headers: kafka.EventHeaders(ev)}
}

func (e *env) produce(rs ...*kgo.Record) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// committed returns the group's committed offset of every partition of topic (absent: none).
func (e *env) committed(topic string) map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	os, err := e.adm.FetchOffsets(ctx, e.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		e.t.Fatalf("fetch offsets: %v", err)
	}
	out := map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitFor polls cond until it holds or the timeout fails the test.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func started(m *member, result string) float64 {
	return counter(m.reg, "stampede_orchestrator_workflows_started_total", result)
}

// counter reads the counter name{result=result} from reg (summed over other labels).
func counter(reg *prometheus.Registry, name, result string) float64 {
	mfs, _ := reg.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && (result == "" || l.GetValue() == result) {
					v += m.GetCounter().GetValue()
				}
			}
			if result == "" && len(m.GetLabel()) == 0 {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// gaugeValue reads an unlabelled gauge from reg.
func gaugeValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// series counts the series of name in reg.
func series(reg *prometheus.Registry, name string) int {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func partitionOf(e *env, topic, key string) int32 {
	e.t.Helper()
	// The default partitioner hashes the key (murmur2), as every producer of the platform does.
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("probe")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	return r.Partition
}

func TestDuplicateAndRedeliveredOrderStartOneWorkflow(t *testing.T) {
	for _, proto := range []struct {
		name   string
		server bool
	}{{"classic-cooperative", false}, {"kip848", true}} {
		t.Run(proto.name, func(t *testing.T) {
			e := newEnv(t)
			a := record(t, event.TopicOrders, "user-1", order("o-a", "user-1"), "cid-a")
			b := record(t, event.TopicOrders, "user-1", order("o-b", "user-1"), "cid-b")
			status := record(t, event.TopicOrders, "user-1", event.OrderStatusChanged{OrderID: "o-a", Status: "processing", Seq: 1, At: time.Now()}, "cid-a")
			// a, its duplicate (the relay published it twice), a status event, b.
			e.produce(a, &kgo.Record{Topic: a.Topic, Key: a.Key, Value: a.Value, Headers: a.Headers}, status, b)
			p := a.Partition

			m := e.start(orchestrator.Config{ServerAssigned: proto.server})
			waitFor(t, "offsets committed through b", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 4 })
			if got := e.fake.Started(); len(got) != 2 || got[0].Order.OrderID != "o-a" || got[1].Order.OrderID != "o-b" {
				t.Fatalf("started %+v, want o-a then o-b once each", got)
			}
			if got := e.fake.Started()[0].CorrelationID; got != "cid-a" {
				t.Errorf("correlation id = %q, want cid-a (from the header)", got)
			}
			if got, want := started(m, "started"), 2.0; got != want {
				t.Errorf("started = %v, want %v", got, want)
			}
			if got, want := started(m, "already_started"), 1.0; got != want {
				t.Errorf("already_started = %v, want %v", got, want)
			}
			m.stop()

			// Redelivery: the group is rewound to the start, as after a crash
			// before the commit; nothing new may start.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rewind := kadm.Offsets{}
			rewind.Add(kadm.Offset{Topic: event.TopicOrders, Partition: p, At: 0})
			if _, err := e.adm.CommitOffsets(ctx, e.group, rewind); err != nil {
				t.Fatal(err)
			}
			m2 := e.start(orchestrator.Config{ServerAssigned: proto.server})
			waitFor(t, "redelivered records processed", 15*time.Second, func() bool { return started(m2, "already_started") == 3 })
			waitFor(t, "offsets committed again", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 4 })
			if got := len(e.fake.Started()); got != 2 {
				t.Errorf("workflows started after redelivery = %d, want 2", got)
			}
			if got := started(m2, "started"); got != 0 {
				t.Errorf("started on redelivery = %v, want 0", got)
			}
		})
	}
}

// Processed offsets are committed right away, not at the next autocommit
// tick: the group's lag is measured from its commits. The autocommit is an
// hour away here, so only the prompt commit can pass the test.
func TestProcessedOffsetsCommittedPromptly(t *testing.T) {
	e := newEnv(t)
	a := record(t, event.TopicOrders, "user-1", order("o-a", "user-1"), "cid-a")
	e.produce(a)
	e.start(orchestrator.Config{CommitInterval: time.Hour})
	waitFor(t, "offset committed after the start", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[a.Partition] == 1 })
	b := record(t, event.TopicOrders, "user-1", order("o-b", "user-1"), "cid-b")
	e.produce(b)
	waitFor(t, "second offset committed", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[a.Partition] == 2 })
	if got := len(e.fake.Started()); got != 2 {
		t.Errorf("started %d workflows, want 2", got)
	}
}

func TestPoisonEventGoesToDLQAndNextIsProcessed(t *testing.T) {
	e := newEnv(t)
	bad := order("o-bad", "user-2")
	bad.TotalCents = 999 // not the sum of the lines: passes JSON, fails validation
	badEnv, _ := event.New(order("o-bad", "user-2"), "test", "cid-bad", time.Now())
	badEnv.Data, _ = json.Marshal(bad)
	badValue, _ := json.Marshal(badEnv)
	e.produce(
		&kgo.Record{Topic: event.TopicOrders, Key: []byte("user-2"), Value: []byte("{not json"),
			Headers: []kgo.RecordHeader{{Key: event.HeaderCorrelationID, Value: []byte("cid-garbage")}}},
		&kgo.Record{Topic: event.TopicOrders, Key: []byte("user-2"), Value: badValue},
		record(t, event.TopicOrders, "user-2", order("o-good", "user-2"), "cid-good"),
	)
	p := partitionOf(e, event.TopicOrders, "user-2") // the probe is offset 3: not a valid event either

	m := e.start(orchestrator.Config{})
	waitFor(t, "good order started", 15*time.Second, func() bool { return len(e.fake.Started()) == 1 })
	if got := e.fake.Started()[0].Order.OrderID; got != "o-good" {
		t.Errorf("started %s, want o-good", got)
	}
	waitFor(t, "all four records committed", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 4 })

	dlq, err := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...), kgo.ConsumeTopics(event.TopicOrdersDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
		cancel()
	}
	if len(got) != 3 {
		t.Fatalf("DLQ has %d records, want 3 (garbage, invalid order, probe)", len(got))
	}
	for i, wantOffset := range []string{"0", "1", "3"} {
		r := got[i]
		if kafka.Header(r, deadletter.HeaderReason) == "" {
			t.Errorf("DLQ record %d has no %s header", i, deadletter.HeaderReason)
		}
		if got := kafka.Header(r, deadletter.HeaderSourceOffset); got != wantOffset {
			t.Errorf("DLQ record %d source offset = %s, want %s", i, got, wantOffset)
		}
		if got := kafka.Header(r, deadletter.HeaderSourceTopic); got != event.TopicOrders {
			t.Errorf("DLQ record %d source topic = %s, want orders", i, got)
		}
		if string(r.Key) != "user-2" {
			t.Errorf("DLQ record %d key = %q, want user-2", i, r.Key)
		}
	}
	if got := kafka.Header(got[0], event.HeaderCorrelationID); got != "cid-garbage" {
		t.Errorf("DLQ record keeps headers: correlation-id = %q, want cid-garbage", got)
	}
	if reason := kafka.Header(got[1], deadletter.HeaderReason); !strings.Contains(reason, "data.totalCents") {
		t.Errorf("reason of the invalid order = %q, want it to name data.totalCents", reason)
	}
	if n := series(m.reg, "stampede_kafka_dlq_records_total"); n == 0 {
		t.Error("stampede_kafka_dlq_records_total not recorded")
	}
}

// A start Temporal refuses for what the record carries (an invalid argument)
// cannot succeed on any retry: the record is dead-lettered with the reason
// and the next order of the partition starts.
func TestRefusedStartGoesToDLQAndNextIsStarted(t *testing.T) {
	e := newEnv(t)
	e.fake.Refuse("o-refused")
	e.produce(
		record(t, event.TopicOrders, "user-9", order("o-refused", "user-9"), "cid-refused"),
		record(t, event.TopicOrders, "user-9", order("o-next", "user-9"), "cid-next"),
	)
	p := partitionOf(e, event.TopicOrders, "user-9") // the probe, offset 2, is dead-lettered too
	e.start(orchestrator.Config{})
	waitFor(t, "next order started", 15*time.Second, func() bool { return len(e.fake.Started()) == 1 })
	if got := e.fake.Started()[0].Order.OrderID; got != "o-next" {
		t.Errorf("started %s, want o-next", got)
	}
	waitFor(t, "all three records committed", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 3 })
	dlq, err := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...), kgo.ConsumeTopics(event.TopicOrdersDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 2 && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 2 {
		t.Fatalf("DLQ has %d records, want the refused order and the probe", len(got))
	}
	r := got[0]
	if reason := kafka.Header(r, deadletter.HeaderReason); !strings.Contains(reason, "refuses") || !strings.Contains(reason, "o-refused") {
		t.Errorf("DLQ reason = %q, want Temporal's refusal of o-refused", reason)
	}
}

// An undecodable record as large as a producer may write is dead-lettered
// cut to size (a full copy could be refused by the DLQ in turn), and the
// partition flows on.
func TestOversizedGarbageIsDeadLetteredCutToSize(t *testing.T) {
	e := newEnv(t)
	e.produce(
		&kgo.Record{Topic: event.TopicOrders, Key: []byte("user-8"), Value: bytes.Repeat([]byte("x"), 900<<10)},
		record(t, event.TopicOrders, "user-8", order("o-after-garbage", "user-8"), "cid-after"),
	)
	e.start(orchestrator.Config{})
	waitFor(t, "the order after the garbage started", 15*time.Second, func() bool { return len(e.fake.Started()) == 1 })
	dlq, err := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...), kgo.ConsumeTopics(event.TopicOrdersDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := dlq.PollFetches(ctx)
	if fs.NumRecords() != 1 {
		t.Fatalf("DLQ has %d records, want the garbage", fs.NumRecords())
	}
	r := fs.Records()[0]
	if len(r.Value) != deadletter.MaxValue || kafka.Header(r, deadletter.HeaderTruncated) != strconv.Itoa(900<<10) {
		t.Errorf("DLQ value %d bytes, truncated-from %q; want %d bytes from %d", len(r.Value),
			kafka.Header(r, deadletter.HeaderTruncated), deadletter.MaxValue, 900<<10)
	}
}

// A 1 MB record on topic orders (the broker here takes records that large,
// as a cluster with a raised message.max.bytes would), undecodable or a
// valid envelope whose order is out of bounds, is dead-lettered cut to size
// with its reason, and the order behind it starts.
func TestOneMegabyteRecordsAreDeadLetteredAndTheNextOrderStarts(t *testing.T) {
	e := newEnv(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(4 << 20)}))
	big := order("o-big", "user-7")
	big.UserID = strings.Repeat("u", 1<<20)
	bigEnv, err := event.New(order("o-big", "user-7"), "test", "cid-big", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bigEnv.Data, _ = json.Marshal(big)
	bigValue, _ := json.Marshal(bigEnv)
	e.produce(
		&kgo.Record{Topic: event.TopicOrders, Key: []byte("user-7"), Value: bytes.Repeat([]byte{0xff}, 1<<20)},
		&kgo.Record{Topic: event.TopicOrders, Key: []byte("user-7"), Value: bigValue},
		record(t, event.TopicOrders, "user-7", order("o-after-1mb", "user-7"), "cid-after"),
	)
	p := partitionOf(e, event.TopicOrders, "user-7") // the probe, offset 3, is dead-lettered too
	e.start(orchestrator.Config{})
	waitFor(t, "the order after the 1 MB records started", 15*time.Second, func() bool { return len(e.fake.Started()) == 1 })
	if got := e.fake.Started()[0].Order.OrderID; got != "o-after-1mb" {
		t.Fatalf("started %s, want o-after-1mb", got)
	}
	waitFor(t, "all four records committed", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 4 })
	dlq, err := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...), kgo.ConsumeTopics(event.TopicOrdersDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	var got []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 3 && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 3 {
		t.Fatalf("DLQ has %d records, want the two 1 MB records and the probe", len(got))
	}
	for i, want := range []string{"envelope", "data.userId"} {
		r := got[i]
		if len(r.Value) != deadletter.MaxValue || kafka.Header(r, deadletter.HeaderTruncated) == "" {
			t.Errorf("dead letter %d: %d bytes, truncated-from %q; want cut to %d", i, len(r.Value), kafka.Header(r, deadletter.HeaderTruncated), deadletter.MaxValue)
		}
		if reason := kafka.Header(r, deadletter.HeaderReason); !strings.Contains(reason, want) {
			t.Errorf("dead letter %d reason %q, want it to name %s", i, reason, want)
		}
	}
}

func TestTemporalDownCommitsNothingUntilRecovered(t *testing.T) {
	e := newEnv(t)
	e.fake.SetDown(true)
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("o-%d", i)
		ids = append(ids, id)
		e.produce(record(t, event.TopicOrders, "user-3", order(id, "user-3"), "cid-"+id))
	}
	p := partitionOf(e, event.TopicOrders, "user-3")

	m := e.start(orchestrator.Config{})
	waitFor(t, "several failed attempts", 15*time.Second, func() bool { _, failed := e.fake.Calls(); return failed >= 5 })
	// The member keeps retrying the first order; it must not have moved on
	// (only one distinct order attempted) nor committed anything.
	if got := e.committed(event.TopicOrders); len(got) != 0 {
		t.Fatalf("committed %v while Temporal is down, want nothing", got)
	}
	if got := started(m, "error"); got < 5 {
		t.Errorf("error starts = %v, want >= 5", got)
	}
	if got := gaugeValue(m.reg, "stampede_orchestrator_paused_partitions"); got != 1 {
		t.Errorf("paused partitions = %v, want 1 while Temporal is down", got)
	}

	e.fake.SetDown(false)
	waitFor(t, "all orders started", 15*time.Second, func() bool { return len(e.fake.Started()) == 5 })
	for i, in := range e.fake.Started() {
		if in.Order.OrderID != ids[i] {
			t.Fatalf("start %d = %s, want %s (partition order)", i, in.Order.OrderID, ids[i])
		}
	}
	waitFor(t, "offsets committed after recovery", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 6 })
	if got := gaugeValue(m.reg, "stampede_orchestrator_paused_partitions"); got != 0 {
		t.Errorf("paused partitions = %v after recovery, want 0", got)
	}
}

func TestCommittedOnlyAfterStart(t *testing.T) {
	e := newEnv(t)
	blocker := &blockingStarter{Temporal: e.fake, release: make(chan struct{}), entered: make(chan string, 10)}
	e.produce(record(t, event.TopicOrders, "user-4", order("o-slow", "user-4"), "cid-slow"))
	p := partitionOf(e, event.TopicOrders, "user-4")

	reg := prometheus.NewRegistry()
	cons := orchestrator.New(orchestrator.Config{Group: e.group, CommitInterval: 100 * time.Millisecond}, blocker, e.fake,
		slog.New(slog.NewTextHandler(io.Discard, nil)), kafka.NewMetrics(reg), orchestrator.NewMetrics(reg))
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.c.ListenAddrs()...)}, cons.Opts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx, cl) }()

	select {
	case <-blocker.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("start never called")
	}
	// The start is in flight: several commit intervals pass with nothing committed.
	time.Sleep(400 * time.Millisecond)
	if got := e.committed(event.TopicOrders); len(got) != 0 {
		t.Fatalf("committed %v while the start was in flight", got)
	}
	// SIGTERM while in flight: the start finishes, then the offset is committed.
	cancel()
	close(blocker.release)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	// The probe behind it (offset 1) may or may not have been reached before the stop.
	if got := e.committed(event.TopicOrders)[p]; got < 1 {
		t.Errorf("committed offset after graceful stop = %d, want at least 1 (the finished start)", got)
	}
	if len(e.fake.Started()) != 1 {
		t.Errorf("started %d, want 1", len(e.fake.Started()))
	}
}

type blockingStarter struct {
	*orchestratortest.Temporal
	release chan struct{}
	entered chan string
}

func (b *blockingStarter) StartOrder(ctx context.Context, in saga.Input) error {
	b.entered <- in.Order.OrderID
	<-b.release
	return b.Temporal.StartOrder(ctx, in)
}

func TestDeliveredSignal(t *testing.T) {
	e := newEnv(t)
	e.produce(record(t, event.TopicOrders, "user-5", order("o-ship", "user-5"), "cid-ship"))
	m := e.start(orchestrator.Config{})
	waitFor(t, "order started", 15*time.Second, func() bool { return len(e.fake.Started()) == 1 })

	e.produce(
		record(t, event.TopicShipping, "o-ship", event.ShipmentDelivered{OrderID: "o-ship", ShipmentID: "s-1"}, "cid-ship"),
		record(t, event.TopicShipping, "o-unknown", event.ShipmentDelivered{OrderID: "o-unknown", ShipmentID: "s-2"}, "cid-unknown"),
	)
	waitFor(t, "signal sent", 15*time.Second, func() bool { return len(e.fake.Signals()) == 1 })
	if s := e.fake.Signals()[0]; s.OrderID != "o-ship" || s.ShipmentID != "s-1" || s.DeliveredAt.IsZero() {
		t.Errorf("signal = %+v, want o-ship/s-1 with a time", s)
	}
	waitFor(t, "unknown workflow counted and committed", 15*time.Second, func() bool {
		return counter(m.reg, "stampede_orchestrator_signals_total", "not_found") == 1
	})
	waitFor(t, "shipping offsets committed", 15*time.Second, func() bool {
		n := int64(0)
		for _, o := range e.committed(event.TopicShipping) {
			n += o
		}
		return n == 2
	})
}

func TestStopWhileRetryingSkipsNothing(t *testing.T) {
	e := newEnv(t)
	e.fake.SetDown(true)
	for i := range 3 {
		id := fmt.Sprintf("o-stop-%d", i)
		e.produce(record(t, event.TopicOrders, "user-6", order(id, "user-6"), "cid-"+id))
	}
	p := partitionOf(e, event.TopicOrders, "user-6")

	a := e.start(orchestrator.Config{})
	waitFor(t, "member a retrying", 15*time.Second, func() bool { _, failed := e.fake.Calls(); return failed >= 2 })
	a.stop() // SIGTERM in the middle of an outage
	if got := e.committed(event.TopicOrders); len(got) != 0 {
		t.Fatalf("committed %v after a stop during an outage, want nothing", got)
	}

	e.fake.SetDown(false)
	e.start(orchestrator.Config{})
	waitFor(t, "member b started every order", 15*time.Second, func() bool { return len(e.fake.Started()) == 3 })
	for i, in := range e.fake.Started() {
		if want := fmt.Sprintf("o-stop-%d", i); in.Order.OrderID != want {
			t.Errorf("start %d = %s, want %s", i, in.Order.OrderID, want)
		}
	}
	waitFor(t, "member b committed", 15*time.Second, func() bool { return e.committed(event.TopicOrders)[p] == 4 })
}
