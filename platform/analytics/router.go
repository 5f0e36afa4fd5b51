package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

// Group is the consumer group of the router.
const Group = "analytics-router"

// DefaultLinger is the router's default Linger. Analytics is no part of an
// order's path; at a 20/s peak each event was a poll of its own (a fetch,
// a delivery, a produce for each matching Kafka target).
const DefaultLinger = 200 * time.Millisecond

// lingerBelow is the poll size from which the router polls again at once.
const lingerBelow = 100

// CommitInterval is how often the router commits what it delivered.
const CommitInterval = 500 * time.Millisecond

// ConsumerOpts are the consumer options of the router for topics.
func ConsumerOpts(group string, topics []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// Offsets of delivered polls are marked and the marks committed every
		// CommitInterval (and on a rebalance and on close): a commit after
		// every poll was one OffsetCommit per order at 20 orders/s.
		// Redelivery after a crash is what the targets already dedupe.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(CommitInterval),
		kgo.BlockRebalanceOnPoll(),
		// A fetch returns as soon as a record arrives (FetchMinBytes 1), so the
		// longest wait only sets how often an idle member asks the broker:
		// every 100 ms was 10 empty fetches a second per member for nothing.
		kgo.FetchMaxWait(time.Second),
		kgo.ProducerLinger(0),
	}
}

// Metrics are the router's own metrics.
type Metrics struct {
	events     *prometheus.CounterVec
	matches    *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	dead       *prometheus.CounterVec
}

// NewMetrics registers the router metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_analytics_events_total",
			Help: "Records the analytics router consumed, by topic.",
		}, []string{"topic"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_analytics_matches_total",
			Help: "Events matched by a rule, by rule and target.",
		}, []string{"rule", "target"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_analytics_target_deliveries_total",
			Help: "Deliveries to targets by outcome: delivered, failed (will be retried), rejected (dead-lettered: refused, or still failing after the target's attempts or batch timeout).",
		}, []string{"target", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stampede_analytics_target_duration_seconds",
			Help:    "Time a target took to acknowledge a batch, by target.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"target"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_analytics_dead_letters_total",
			Help: "Records the router dead-lettered to analytics.dlq, by target (none for an undecodable record) and cause: undecodable, rejected, exhausted, timeout; dropped counts dead letters the DLQ topic itself refused (logged, then skipped).",
		}, []string{"target", "cause"}),
	}
	reg.MustRegister(m.events, m.matches, m.deliveries, m.duration, m.dead)
	return m
}

// Router matches consumed events against the rules and delivers them.
type Router struct {
	Client  *kgo.Client // consumer (ConsumerOpts) and idempotent producer for the DLQ
	Group   string      // for metrics; default Group
	Rules   *Rules
	Targets map[string]Target // by TargetSpec.ID
	Log     *slog.Logger
	Metrics *Metrics       // optional
	Kafka   *kafka.Metrics // optional
	DLQ     string         // dead-letter topic; default event.TopicAnalyticsDLQ
	// Linger is how long the router waits after a small poll before the
	// next, so the events arriving meanwhile are routed, delivered and
	// committed together. It bounds the delay it adds to a delivery.
	Linger time.Duration

	// acked remembers, across a retry of the same poll, which deliveries a
	// target already acknowledged or gave up on, so a retry resends only
	// what failed (a webhook that hangs is not waited for twice).
	acked map[ackKey]bool
	// pending holds the poll's dead letters across a retry of the poll:
	// only those not yet written are produced again.
	pending map[dlqKey]*pendingDLQ

	// Counters resolved once: a label lookup per event and match costs more
	// than matching a rule.
	eventCounters map[string]prometheus.Counter
	matchCounters [][]prometheus.Counter // [rule][target]
}

type ackKey struct{ target, rule, id string }

// dlqKey is one dead letter of a poll: a source record, and the rule and
// target that gave up on it (both "" for an undecodable record).
type dlqKey struct {
	topic        string
	part         int32
	offset       int64
	rule, target string
}

type pendingDLQ struct {
	done   bool        // written (or dropped)
	rec    *kgo.Record // the dead letter
	source *kgo.Record
	target string // metrics label, "none" for an undecodable record
	cause  string
	label  string // reason label of stampede_kafka_dlq_records_total
}

// Routed is the outcome of matching one poll's records.
type Routed struct {
	Batches map[string][]Delivery // by target id
	DLQ     []DeadLetter          // undecodable records
}

// DeadLetter is a record on its way to the dead-letter topic.
type DeadLetter struct {
	Record *kgo.Record // the dead letter (deadletter.Record of the source)
	Source *kgo.Record
	Label  string // reason label of stampede_kafka_dlq_records_total
}

// Route decodes and matches recs. Undecodable records go to Routed.DLQ with
// a reason header.
func (r *Router) Route(recs []*kgo.Record) Routed {
	out := Routed{Batches: map[string][]Delivery{}}
	r.resolveCounters()
	for _, rec := range recs {
		if r.Metrics != nil {
			c, ok := r.eventCounters[rec.Topic]
			if !ok {
				c = r.Metrics.events.WithLabelValues(rec.Topic)
				r.eventCounters[rec.Topic] = c
			}
			c.Inc()
		}
		env, doc, err := decode(rec.Value)
		if err != nil {
			label := "undecodable"
			var de *event.DecodeError
			if errors.As(err, &de) && de.Field != "" {
				label = "undecodable: " + de.Field
			}
			out.DLQ = append(out.DLQ, DeadLetter{Record: deadletter.Record(r.dlqTopic(), rec, err.Error()), Source: rec, Label: label})
			continue
		}
		for i, rule := range r.Rules.Rules {
			if !rule.Matches(rec.Topic, doc) {
				continue
			}
			for j, id := range rule.targets {
				if r.Metrics != nil {
					r.matchCounters[i][j].Inc()
				}
				out.Batches[id] = append(out.Batches[id], Delivery{Rule: rule.Name, Record: rec, Env: env})
			}
		}
	}
	return out
}

func (r *Router) resolveCounters() {
	if r.Metrics == nil || r.eventCounters != nil {
		return
	}
	r.eventCounters = map[string]prometheus.Counter{}
	r.matchCounters = make([][]prometheus.Counter, len(r.Rules.Rules))
	for i, rule := range r.Rules.Rules {
		for _, id := range rule.targets {
			r.matchCounters[i] = append(r.matchCounters[i], r.Metrics.matches.WithLabelValues(rule.Name, r.Rules.Targets[id].Label()))
		}
	}
}

// decode validates the envelope and returns it with its JSON form for matching.
func decode(b []byte) (event.Envelope, map[string]any, error) {
	env, err := event.Decode(b)
	if err != nil {
		return env, nil, err
	}
	var data any
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return env, nil, &event.DecodeError{Type: env.Type, Field: "data", Reason: err.Error()}
	}
	doc := map[string]any{
		"id":            env.ID,
		"type":          env.Type,
		"version":       float64(env.Version),
		"occurredAt":    env.OccurredAt.Format(time.RFC3339Nano),
		"correlationId": env.CorrelationID,
		"source":        env.Source,
		"data":          data,
	}
	return env, doc, nil
}

func (r *Router) dlqTopic() string {
	if r.DLQ != "" {
		return r.DLQ
	}
	return event.TopicAnalyticsDLQ
}

// dlqTimeout bounds one write of dead letters: a broker that hangs fails
// the poll, which is retried, instead of holding it.
const dlqTimeout = 10 * time.Second

// Deliver sends every batch to its target concurrently and the dead letters
// (undecodable records, deliveries a target gave up on) to the DLQ, and
// returns nil only when every delivery was acknowledged or dead-lettered.
// A dead letter the DLQ topic refuses for what it is (deadletter.Refused)
// is logged and dropped, so that no record stalls the router; one that
// fails for the cluster's state is written again on the poll's retry, and
// only it.
func (r *Router) Deliver(ctx context.Context, routed Routed) error {
	if r.acked == nil {
		r.acked = map[ackKey]bool{}
	}
	if r.pending == nil {
		r.pending = map[dlqKey]*pendingDLQ{}
	}
	for _, dl := range routed.DLQ {
		k := dlqKey{topic: dl.Source.Topic, part: dl.Source.Partition, offset: dl.Source.Offset}
		if _, ok := r.pending[k]; !ok {
			r.pending[k] = &pendingDLQ{rec: dl.Record, target: "none", cause: "undecodable", label: dl.Label, source: dl.Source}
		}
	}
	ids := make([]string, 0, len(routed.Batches))
	for id := range routed.Batches {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	todos := make(map[string][]Delivery, len(ids))
	for _, id := range ids {
		for _, d := range routed.Batches[id] {
			if !r.acked[ackKey{id, d.Rule, d.Env.ID}] {
				todos[id] = append(todos[id], d)
			}
		}
	}
	for _, id := range ids {
		todo := todos[id]
		if len(todo) == 0 {
			continue
		}
		t, ok := r.Targets[id]
		if !ok {
			return fmt.Errorf("analytics: no target %s", id)
		}
		label := r.Rules.Targets[id].Label()
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := t.Deliver(ctx, todo)
			if r.Metrics != nil {
				r.Metrics.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			}
			mu.Lock()
			defer mu.Unlock()
			re, isRej := rejected(err)
			if err != nil && !isRej {
				errs = append(errs, fmt.Errorf("target %s: %w", label, err))
				r.count(label, "failed", len(todo))
				return
			}
			if isRej {
				for _, rj := range re.Rejected {
					d := rj.Delivery
					cause := rj.Cause
					if cause == "" {
						cause = CauseRejected
					}
					r.pending[dlqKey{d.Record.Topic, d.Record.Partition, d.Record.Offset, d.Rule, id}] = &pendingDLQ{
						rec:    deadletter.Record(r.dlqTopic(), d.Record, fmt.Sprintf("rule %s: target %s: %s", d.Rule, label, rj.Reason)),
						source: d.Record, target: label, cause: cause, label: cause,
					}
				}
				r.count(label, "rejected", len(re.Rejected))
				r.count(label, "delivered", len(todo)-len(re.Rejected))
			} else {
				r.count(label, "delivered", len(todo))
			}
			// A rejection is settled too: its dead letter is pending, and a
			// retry of the poll writes only that, never asks the target again.
			for _, d := range todo {
				r.acked[ackKey{id, d.Rule, d.Env.ID}] = true
			}
		}()
	}
	wg.Wait()
	if err := r.writeDeadLetters(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// writeDeadLetters produces the pending dead letters, each counted once it
// is written (or dropped).
func (r *Router) writeDeadLetters(ctx context.Context) error {
	todo := map[*kgo.Record]*pendingDLQ{} // ProduceSync answers in completion order
	var recs []*kgo.Record
	for _, p := range r.pending {
		if !p.done {
			todo[p.rec] = p
			recs = append(recs, p.rec)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	var failed error
	for _, res := range r.Client.ProduceSync(pctx, recs...) {
		p := todo[res.Record]
		switch {
		case res.Err == nil:
			r.countDead(p.target, p.cause)
			if r.Kafka != nil {
				r.Kafka.DeadLettered(p.source.Topic, p.label)
			}
			r.Log.Warn("record dead-lettered", "topic", p.source.Topic, "partition", p.source.Partition, "offset", p.source.Offset,
				"reason", kafka.Header(p.rec, deadletter.HeaderReason))
		case deadletter.Refused(res.Err):
			r.countDead(p.target, "dropped")
			if r.Kafka != nil {
				r.Kafka.DeadLettered(p.source.Topic, "dlq-refused")
			}
			r.Log.Error("record dropped: the dead-letter topic refuses it too", "topic", p.source.Topic, "partition", p.source.Partition,
				"offset", p.source.Offset, "reason", kafka.Header(p.rec, deadletter.HeaderReason), "err", res.Err)
		default:
			if failed == nil {
				failed = fmt.Errorf("produce to %s: %w", r.dlqTopic(), res.Err)
			}
			continue // written again on the poll's retry
		}
		p.done = true
	}
	return failed
}

func (r *Router) countDead(target, cause string) {
	if r.Metrics != nil {
		r.Metrics.dead.WithLabelValues(target, cause).Inc()
	}
}

func (r *Router) count(label, outcome string, n int) {
	if r.Metrics != nil && n > 0 {
		r.Metrics.deliveries.WithLabelValues(label, outcome).Add(float64(n))
	}
}

// Run consumes until ctx is done. A poll is committed only once every
// matched target acknowledged it; on a failure the consumer goes back to the
// poll's first offsets and tries again after a backoff.
func (r *Router) Run(ctx context.Context) error {
	group := r.Group
	if group == "" {
		group = Group
	}
	// A poll blocks rebalances until allowed; allow them on the way out too,
	// or closing the client waits forever to leave the group.
	defer r.Client.AllowRebalance()
	backoff := 250 * time.Millisecond
	for {
		fs := r.Client.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.Log.Warn("fetch error", "topic", topic, "partition", part, "err", err)
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			r.Client.AllowRebalance()
			continue
		}
		if err := r.Deliver(ctx, r.Route(recs)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.Log.Warn("delivery failed; retrying the poll from its first offsets", "records", len(recs), "err", err, "backoff", backoff)
			r.rewind(recs)
			r.Client.AllowRebalance()
			sleep(ctx, backoff)
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		r.Client.MarkCommitRecords(recs...)
		clear(r.acked)
		clear(r.pending)
		if r.Kafka != nil {
			now := time.Now()
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				for _, rec := range p.Records {
					r.Kafka.ObserveConsumed(group, rec, p.HighWatermark, now)
				}
			})
		}
		r.Client.AllowRebalance()
		if r.Linger > 0 && len(recs) < lingerBelow {
			sleep(ctx, r.Linger)
		}
	}
}

// rewind moves each partition of recs back to its first record in recs.
// (Rewinding to the committed offsets would skip a new group's first poll,
// which has no committed offset yet.)
func (r *Router) rewind(recs []*kgo.Record) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, rec := range recs {
		if offsets[rec.Topic] == nil {
			offsets[rec.Topic] = map[int32]kgo.EpochOffset{}
		}
		if cur, ok := offsets[rec.Topic][rec.Partition]; !ok || rec.Offset < cur.Offset {
			offsets[rec.Topic][rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset}
		}
	}
	r.Client.SetOffsets(offsets)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
