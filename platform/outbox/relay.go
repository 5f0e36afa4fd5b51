package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/failpoint"
)

// Row is one committed, unsent outbox row.
type Row struct {
	ID        int64
	EventID   string
	Topic     string
	Key       string
	Value     []byte
	Headers   map[string]string
	CreatedAt time.Time
}

// Batch is a set of claimed rows. Until MarkSent or Release, no other relay
// can claim them.
type Batch interface {
	Rows() []Row
	// MarkSent records the rows as published and releases the claim.
	MarkSent(ctx context.Context) error
	// Release gives the rows back unsent.
	Release(ctx context.Context)
}

// Store is where the relay finds committed rows.
type Store interface {
	// Claim returns up to limit unsent rows in id order, or an empty batch.
	Claim(ctx context.Context, limit int) (Batch, error)
	// Wait returns when new rows may have been committed, or after poll.
	Wait(ctx context.Context, poll time.Duration) error
}

// Producer is the part of *kgo.Client the relay uses: a transactional producer.
type Producer interface {
	BeginTransaction() error
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	Flush(ctx context.Context) error
	AbortBufferedRecords(ctx context.Context) error
	EndTransaction(ctx context.Context, commit kgo.TransactionEndTry) error
}

var _ Producer = (*kgo.Client)(nil)

// Failpoints of the relay (see package failpoint).
const (
	FailBeforePublish = "relay.before-publish" // rows claimed, nothing produced
	FailBeforeCommit  = "relay.before-commit"  // records produced in an open Kafka transaction
	FailBeforeMark    = "relay.before-mark"    // Kafka transaction committed, rows not marked
)

// Relay publishes the rows of one Store through one transactional producer.
type Relay struct {
	Name     string // e.g. the schema; labels metrics and logs
	Store    Store
	Producer Producer
	Log      *slog.Logger
	Metrics  *Metrics
	Batch    int           // rows per Kafka transaction; default 500
	Poll     time.Duration // polling fallback when no notification comes; default 1s
}

// Run publishes until ctx is done. Errors from Kafka or the store are logged
// and retried with backoff: the relay never skips a row.
func (r *Relay) Run(ctx context.Context) error {
	poll := r.Poll
	if poll <= 0 {
		poll = time.Second
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := r.Step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.Log.Warn("outbox relay step failed; retrying", "relay", r.Name, "err", err, "backoff", backoff)
			if r.Metrics != nil {
				r.Metrics.errors.WithLabelValues(r.Name).Inc()
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n == 0 {
			if err := r.Store.Wait(ctx, poll); err != nil && ctx.Err() == nil {
				r.Log.Warn("outbox relay wait failed", "relay", r.Name, "err", err)
				sleep(ctx, backoff)
			}
		}
	}
	return nil
}

// Step claims one batch and publishes it. It returns how many rows it published.
func (r *Relay) Step(ctx context.Context) (int, error) {
	limit := r.Batch
	if limit <= 0 {
		limit = 500
	}
	b, err := r.Store.Claim(ctx, limit)
	if err != nil {
		return 0, fmt.Errorf("claim rows: %w", err)
	}
	rows := b.Rows()
	if len(rows) == 0 {
		b.Release(ctx)
		return 0, nil
	}
	failpoint.Hit(FailBeforePublish)
	start := time.Now()
	if err := r.publish(ctx, rows); err != nil {
		b.Release(context.WithoutCancel(ctx))
		return 0, fmt.Errorf("publish %d rows: %w", len(rows), err)
	}
	published := time.Now()
	failpoint.Hit(FailBeforeMark)
	if err := b.MarkSent(context.WithoutCancel(ctx)); err != nil {
		// The rows are on Kafka but still unsent here: they will be published
		// again with the same event ids, which consumers dedupe.
		return 0, fmt.Errorf("mark %d published rows sent (they will be republished): %w", len(rows), err)
	}
	if m := r.Metrics; m != nil {
		m.published.WithLabelValues(r.Name).Add(float64(len(rows)))
		m.publishDur.WithLabelValues(r.Name).Observe(published.Sub(start).Seconds())
		for _, row := range rows {
			m.delay.WithLabelValues(r.Name).Observe(published.Sub(row.CreatedAt).Seconds())
		}
	}
	return len(rows), nil
}

func (r *Relay) publish(ctx context.Context, rows []Row) error {
	if err := r.Producer.BeginTransaction(); err != nil {
		return fmt.Errorf("begin kafka transaction: %w", err)
	}
	errc := make(chan error, len(rows))
	for _, row := range rows {
		rec := &kgo.Record{Topic: row.Topic, Key: []byte(row.Key), Value: row.Value}
		for k, v := range row.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		r.Producer.Produce(ctx, rec, func(_ *kgo.Record, err error) { errc <- err })
	}
	ferr := r.Producer.Flush(ctx)
	var perr error
	for range rows {
		if err := <-errc; err != nil && perr == nil {
			perr = err
		}
	}
	if ferr == nil && perr == nil {
		failpoint.Hit(FailBeforeCommit)
		if err := r.Producer.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit kafka transaction: %w", err)
		}
		return nil
	}
	// Abort so that none of the batch is visible to read_committed consumers.
	actx := context.WithoutCancel(ctx)
	if err := r.Producer.AbortBufferedRecords(actx); err != nil {
		return errors.Join(perr, ferr, fmt.Errorf("abort buffered records: %w", err))
	}
	if err := r.Producer.EndTransaction(actx, kgo.TryAbort); err != nil {
		return errors.Join(perr, ferr, fmt.Errorf("abort kafka transaction: %w", err))
	}
	return errors.Join(perr, ferr)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Metrics are the relay's metrics.
type Metrics struct {
	published  *prometheus.CounterVec
	errors     *prometheus.CounterVec
	publishDur *prometheus.HistogramVec
	delay      *prometheus.HistogramVec
	unsent     *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
}

// NewMetrics registers the relay metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_outbox_published_total", Help: "Outbox rows published to Kafka, by outbox."}, []string{"outbox"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_outbox_relay_errors_total", Help: "Failed relay steps (retried), by outbox."}, []string{"outbox"}),
		publishDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stampede_outbox_publish_duration_seconds", Help: "Duration of one Kafka transaction publishing a batch, by outbox.", Buckets: lat}, []string{"outbox"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stampede_outbox_delay_seconds", Help: "Time from a row's insert to its Kafka commit, by outbox.", Buckets: lat}, []string{"outbox"}),
		unsent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_outbox_unsent_rows", Help: "Committed outbox rows not yet published, by outbox."}, []string{"outbox"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_outbox_oldest_unsent_age_seconds", Help: "Age of the oldest unsent outbox row (0 when none), by outbox."}, []string{"outbox"}),
	}
	reg.MustRegister(m.published, m.errors, m.publishDur, m.delay, m.unsent, m.oldest)
	return m
}

// SetBacklog records the unsent row count and the age of the oldest unsent row.
func (m *Metrics) SetBacklog(outbox string, unsent int64, oldest time.Duration) {
	m.unsent.WithLabelValues(outbox).Set(float64(unsent))
	m.oldest.WithLabelValues(outbox).Set(oldest.Seconds())
}
