package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
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

// Batch is a set of claimed rows. Until Finish or Release, no other relay
// can claim them.
type Batch interface {
	Rows() []Row
	// Finish records the rows of sent as published and those of dead as
	// dead-lettered, leaves the other rows unsent, and releases the claim.
	Finish(ctx context.Context, sent []int64, dead []Dead) error
	// Release gives the rows back unsent.
	Release(ctx context.Context)
}

// Dead is a row the relay gave up on: Kafka refused it as such (too large, an
// invalid record) MaxAttempts times. It stays in the outbox table, marked, for
// `stampede deadletter` to list and replay; the rows after it flow on.
type Dead struct {
	ID     int64
	Reason string
}

// MaxAttempts is how many times a row Kafka refuses for what it is (not for
// the state of the cluster) is tried before it is dead-lettered.
const MaxAttempts = 3

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

	refused map[int64]int // row id -> publishes Kafka refused as poison
}

// Run publishes until ctx is done. Errors from Kafka or the store are logged
// and retried with backoff: the relay never skips a row for the state of
// Kafka or the store; only a row Kafka refuses for itself, MaxAttempts times,
// is dead-lettered so that one row cannot stop the outbox.
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
	sent, dead, perr := r.publishAll(ctx, rows)
	if len(sent) == 0 && len(dead) == 0 {
		b.Release(context.WithoutCancel(ctx))
		return 0, fmt.Errorf("publish %d rows: %w", len(rows), perr)
	}
	published := time.Now()
	failpoint.Hit(FailBeforeMark)
	if err := b.Finish(context.WithoutCancel(ctx), sent, dead); err != nil {
		// The rows are on Kafka but still unsent here: they will be published
		// again with the same event ids, which consumers dedupe.
		return 0, fmt.Errorf("mark %d published rows sent (they will be republished): %w", len(sent), err)
	}
	for _, d := range dead {
		delete(r.refused, d.ID)
		r.Log.Error("outbox row dead-lettered: Kafka refuses it; the rows after it flow on", "relay", r.Name, "row", d.ID, "reason", d.Reason)
	}
	if m := r.Metrics; m != nil {
		m.published.WithLabelValues(r.Name).Add(float64(len(sent)))
		m.dead.WithLabelValues(r.Name).Add(float64(len(dead)))
		m.publishDur.WithLabelValues(r.Name).Observe(published.Sub(start).Seconds())
		byID := make(map[int64]time.Time, len(rows))
		for _, row := range rows {
			byID[row.ID] = row.CreatedAt
		}
		for _, id := range sent {
			m.delay.WithLabelValues(r.Name).Observe(published.Sub(byID[id]).Seconds())
		}
	}
	if perr != nil {
		return len(sent), fmt.Errorf("publish %d of %d rows: %w", len(rows)-len(sent)-len(dead), len(rows), perr)
	}
	return len(sent), nil
}

// publishAll publishes rows in one transaction. When that fails it publishes
// them one by one, in order, to find a row Kafka refuses for itself: such a
// row is retried on later steps and dead after MaxAttempts refusals, and the
// rows before it are sent. Any other failure stops at the row it hit, which
// stays unsent with the rest.
func (r *Relay) publishAll(ctx context.Context, rows []Row) (sent []int64, dead []Dead, err error) {
	err = r.publish(ctx, rows)
	if err == nil {
		sent = make([]int64, len(rows))
		for i, row := range rows {
			sent[i] = row.ID
		}
		return sent, nil, nil
	}
	if ctx.Err() != nil || (len(rows) > 1 && !deadletter.Refused(err)) {
		return nil, nil, err
	}
	for _, row := range rows {
		err := r.publish(ctx, []Row{row})
		if err == nil {
			sent = append(sent, row.ID)
			continue
		}
		if !deadletter.Refused(err) || ctx.Err() != nil {
			return sent, dead, err
		}
		if r.refused == nil {
			r.refused = map[int64]int{}
		}
		r.refused[row.ID]++
		if r.refused[row.ID] < MaxAttempts {
			return sent, dead, fmt.Errorf("row %d refused (attempt %d of %d): %w", row.ID, r.refused[row.ID], MaxAttempts, err)
		}
		dead = append(dead, Dead{ID: row.ID, Reason: fmt.Sprintf("kafka refused it %d times: %v", MaxAttempts, err)})
	}
	return sent, dead, nil
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
	dead       *prometheus.CounterVec
	errors     *prometheus.CounterVec
	publishDur *prometheus.HistogramVec
	delay      *prometheus.HistogramVec
	unsent     *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
	deadRows   *prometheus.GaugeVec
}

// NewMetrics registers the relay metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_outbox_published_total", Help: "Outbox rows published to Kafka, by outbox."}, []string{"outbox"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_outbox_dead_total", Help: "Outbox rows dead-lettered because Kafka refused them MaxAttempts times, by outbox."}, []string{"outbox"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_outbox_relay_errors_total", Help: "Failed relay steps (retried), by outbox."}, []string{"outbox"}),
		publishDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stampede_outbox_publish_duration_seconds", Help: "Duration of one Kafka transaction publishing a batch, by outbox.", Buckets: lat}, []string{"outbox"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stampede_outbox_delay_seconds", Help: "Time from a row's insert to its Kafka commit, by outbox.", Buckets: lat}, []string{"outbox"}),
		unsent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_outbox_unsent_rows", Help: "Committed outbox rows not yet published, by outbox."}, []string{"outbox"}),
		deadRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_outbox_dead_rows", Help: "Dead-lettered outbox rows waiting for `stampede deadletter replay`, by outbox."}, []string{"outbox"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_outbox_oldest_unsent_age_seconds", Help: "Age of the oldest unsent outbox row (0 when none), by outbox."}, []string{"outbox"}),
	}
	reg.MustRegister(m.published, m.dead, m.errors, m.publishDur, m.delay, m.unsent, m.oldest, m.deadRows)
	return m
}

// SetBacklog records the unsent row count and the age of the oldest unsent row.
func (m *Metrics) SetBacklog(outbox string, unsent int64, oldest time.Duration) {
	m.unsent.WithLabelValues(outbox).Set(float64(unsent))
	m.oldest.WithLabelValues(outbox).Set(oldest.Seconds())
}
