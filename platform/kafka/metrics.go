package kafka

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics records what a client produces and consumes. Install it on a client
// with kgo.WithHooks(m); consumers also call ObserveConsumed for each record
// they process, which records lag in time and in offsets.
type Metrics struct {
	produced      *prometheus.CounterVec
	produceErrors *prometheus.CounterVec
	produceLat    *prometheus.HistogramVec
	consumed      *prometheus.CounterVec
	lagSeconds    *prometheus.HistogramVec
	lagOffsets    *prometheus.GaugeVec
	rebalances    *prometheus.CounterVec
	dlq           *prometheus.CounterVec
}

// LagBuckets resolve the 100 ms lag target finely and still show outages.
var LagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .075, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// NewMetrics registers the Kafka metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_kafka_records_produced_total",
			Help: "Records acknowledged by the broker, by topic.",
		}, []string{"topic"}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_kafka_produce_errors_total",
			Help: "Records that failed to produce, by topic.",
		}, []string{"topic"}),
		produceLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stampede_kafka_produce_latency_seconds",
			Help:    "Time from a record being buffered to its acknowledgement, by topic.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"topic"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_kafka_records_consumed_total",
			Help: "Records processed by a consumer group, by group and topic.",
		}, []string{"group", "topic"}),
		lagSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stampede_kafka_consumer_lag_seconds",
			Help:    "Consumer lag in time: processing time minus record timestamp, by group, topic and partition.",
			Buckets: LagBuckets,
		}, []string{"group", "topic", "partition"}),
		lagOffsets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_kafka_consumer_lag_offsets",
			Help: "Consumer lag in offsets at the last processed record: high watermark minus next offset.",
		}, []string{"group", "topic", "partition"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_kafka_rebalances_total",
			Help: "Partition assignments and revocations seen by a consumer, by group and kind.",
		}, []string{"group", "kind"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_kafka_dlq_records_total",
			Help: "Records sent to a dead-letter topic, by source topic and reason.",
		}, []string{"topic", "reason"}),
	}
	reg.MustRegister(m.produced, m.produceErrors, m.produceLat, m.consumed, m.lagSeconds, m.lagOffsets, m.rebalances, m.dlq)
	return m
}

var _ kgo.HookProduceRecordUnbuffered = (*Metrics)(nil)

// OnProduceRecordUnbuffered implements kgo.HookProduceRecordUnbuffered.
func (m *Metrics) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil {
		m.produceErrors.WithLabelValues(r.Topic).Inc()
		return
	}
	m.produced.WithLabelValues(r.Topic).Inc()
	if !r.Timestamp.IsZero() {
		m.produceLat.WithLabelValues(r.Topic).Observe(time.Since(r.Timestamp).Seconds())
	}
}

// ObserveConsumed records a processed record of group: count, lag in time
// (now minus the record timestamp), and lag in offsets when the high
// watermark is known (hw < 0 when not). It returns the time lag.
func (m *Metrics) ObserveConsumed(group string, r *kgo.Record, hw int64, now time.Time) time.Duration {
	lag := now.Sub(r.Timestamp)
	if lag < 0 {
		lag = 0 // clocks on one machine; a negative is rounding
	}
	p := strconv.Itoa(int(r.Partition))
	m.consumed.WithLabelValues(group, r.Topic).Inc()
	m.lagSeconds.WithLabelValues(group, r.Topic, p).Observe(lag.Seconds())
	if hw >= 0 {
		behind := hw - (r.Offset + 1)
		if behind < 0 {
			behind = 0
		}
		m.lagOffsets.WithLabelValues(group, r.Topic, p).Set(float64(behind))
	}
	return lag
}

// Rebalance counts a partition assignment ("assigned") or revocation ("revoked", "lost").
func (m *Metrics) Rebalance(group, kind string) {
	m.rebalances.WithLabelValues(group, kind).Inc()
}

// DeadLettered counts a record sent to a dead-letter topic.
func (m *Metrics) DeadLettered(topic, reason string) {
	m.dlq.WithLabelValues(topic, reason).Inc()
}
