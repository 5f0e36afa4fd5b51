package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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

// Claimer claims the unsent rows of several sources at once, so that a step
// publishing the rows of several outboxes costs one store transaction.
type Claimer interface {
	// ClaimAll claims up to limit unsent rows, in id order, of each source
	// in which (indexes into Relay.Sources).
	ClaimAll(ctx context.Context, which []int, limit int) (Claim, error)
}

// Claim is the rows a ClaimAll claimed. Until Finish or Release, no other
// relay can claim them.
type Claim interface {
	Rows() map[int][]Row // by source
	// Finish records the rows of sent as published and those of dead as
	// dead-lettered (by source), leaves the others unsent, and releases all.
	Finish(ctx context.Context, sent map[int][]int64, dead map[int][]Dead) error
	// Release gives every row back unsent.
	Release(ctx context.Context)
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
	// FailMarkBeforeCommit breaks the relay on purpose: it marks the rows
	// sent before their Kafka transaction commits, so a relay that dies (or
	// a transaction that aborts) in between loses them. The chaos selftest
	// must catch it.
	FailMarkBeforeCommit = "relay.mark-before-commit"
)

// slowPublish is how long a Kafka transaction may take before it is logged.
const slowPublish = 50 * time.Millisecond

// Source is one outbox the relay publishes: its Store, the name that labels
// its metrics and logs (the schema), and how long its rows may wait for
// others to join their transaction.
type Source struct {
	Name  string
	Store Store
	// Linger is the longest a notified row of this source waits before the
	// relay publishes: zero for rows someone waits on (a new order), longer
	// for events nobody waits on, which then mostly ride along with the next
	// order's transaction.
	Linger time.Duration
}

// Relay publishes the rows of every Source through one transactional
// producer: the rows waiting in all outboxes when it publishes go out in one
// Kafka transaction. One transaction per row and outbox was what an order
// cost before (four, one per service, each with its commit markers and
// transaction-log writes): the most expensive thing the broker did per order.
type Relay struct {
	Sources []Source
	// Claimer claims for several sources at once; nil: each source's Store
	// claims on its own (one store transaction per source and step).
	Claimer  Claimer
	Producer Producer
	Log      *slog.Logger
	Metrics  *Metrics
	Batch    int           // rows per source per Kafka transaction; default 500
	Poll     time.Duration // polling fallback when no notification comes; default 1s

	refused map[rowKey]int // publishes Kafka refused as poison, by row
}

// rowKey names a row across sources (ids are per outbox table).
type rowKey struct {
	source int
	id     int64
}

// Run publishes until ctx is done. Errors from Kafka or the store are logged
// and retried with backoff: the relay never skips a row for the state of
// Kafka or the store; only a row Kafka refuses for itself, MaxAttempts times,
// is dead-lettered so that one row cannot stop the outbox.
//
// One waiter per source reports its notifications (and each poll). A
// notified source is due after its Linger; when one is due, every notified
// source is claimed and published in the same transaction.
func (r *Relay) Run(ctx context.Context) error {
	poll := r.Poll
	if poll <= 0 {
		poll = time.Second
	}
	notified := make(chan int, len(r.Sources))
	for i, src := range r.Sources {
		go func() {
			backoff := 100 * time.Millisecond
			for ctx.Err() == nil {
				if err := src.Store.Wait(ctx, poll); err != nil && ctx.Err() == nil {
					r.Log.Warn("outbox relay wait failed", "outbox", src.Name, "err", err)
					sleep(ctx, backoff)
				}
				select {
				case notified <- i:
				case <-ctx.Done():
				}
			}
		}()
	}
	// Rows committed while no relay ran are due at once.
	due := make(map[int]time.Time, len(r.Sources))
	now := time.Now()
	for i := range r.Sources {
		due[i] = now
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		next := time.Time{}
		for _, at := range due {
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		var fire <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case i := <-notified:
			if _, ok := due[i]; !ok {
				due[i] = time.Now().Add(r.Sources[i].Linger)
			}
			timer.Stop()
			continue
		case <-fire:
		}
		which := make([]int, 0, len(due))
		for i := range due {
			which = append(which, i)
		}
		sort.Ints(which)
		clear(due)
		for ctx.Err() == nil {
			full, err := r.step(ctx, which)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				r.Log.Warn("outbox relay step failed; retrying", "err", err, "backoff", backoff)
				if r.Metrics != nil {
					for _, i := range which {
						r.Metrics.errors.WithLabelValues(r.Sources[i].Name).Inc()
					}
				}
				sleep(ctx, backoff)
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			if len(full) == 0 {
				break
			}
			// A full batch may have left rows behind: claim those sources
			// again. Rows committed meanwhile elsewhere notified their source.
			which = full
		}
	}
	return nil
}

// Step claims a batch from every source and publishes them in one
// transaction. It returns how many rows it published.
func (r *Relay) Step(ctx context.Context) (int, error) {
	all := make([]int, len(r.Sources))
	for i := range all {
		all[i] = i
	}
	n, _, err := r.publishStep(ctx, all)
	return n, err
}

// step is a Step over the sources which; it returns the sources whose batch
// was full (rows may be left).
func (r *Relay) step(ctx context.Context, which []int) ([]int, error) {
	_, full, err := r.publishStep(ctx, which)
	return full, err
}

// publishStep claims a batch from each of the sources which and publishes
// them in one transaction. It returns how many rows it published and which
// sources filled their batch.
func (r *Relay) publishStep(ctx context.Context, which []int) (int, []int, error) {
	limit := r.Batch
	if limit <= 0 {
		limit = 500
	}
	c, err := r.claimer().ClaimAll(ctx, which, limit)
	if err != nil {
		return 0, nil, err
	}
	claimed := c.Rows()
	var (
		rows []Row
		keys []rowKey
		full []int
	)
	for _, i := range which {
		rs := claimed[i]
		if len(rs) >= limit {
			full = append(full, i)
		}
		for _, row := range rs {
			rows = append(rows, row)
			keys = append(keys, rowKey{i, row.ID})
		}
	}
	if len(rows) == 0 {
		c.Release(context.WithoutCancel(ctx))
		return 0, nil, nil
	}
	if failpoint.Armed(FailMarkBeforeCommit) {
		return r.markThenPublish(ctx, c, rows, keys)
	}
	failpoint.Hit(FailBeforePublish)
	start := time.Now()
	sent, dead, perr := r.publishAll(ctx, rows, keys)
	if len(sent) == 0 && len(dead) == 0 {
		c.Release(context.WithoutCancel(ctx))
		return 0, nil, fmt.Errorf("publish %d rows: %w", len(rows), perr)
	}
	published := time.Now()
	if d := published.Sub(start); d >= slowPublish {
		// Consumers see the rows only once their transaction commits: a
		// slow one is lag every consumer of them shows.
		r.Log.Info("slow publish", "rows", len(rows), "took", d)
	}
	failpoint.Hit(FailBeforeMark)
	sentBy := map[int][]int64{}
	deadBy := map[int][]Dead{}
	for _, k := range sent {
		sentBy[k.source] = append(sentBy[k.source], k.id)
	}
	for _, d := range dead {
		deadBy[d.source] = append(deadBy[d.source], Dead{ID: d.id, Reason: d.reason})
	}
	if err := c.Finish(context.WithoutCancel(ctx), sentBy, deadBy); err != nil {
		// The rows are on Kafka but still unsent here: they will be
		// published again with the same event ids, which consumers dedupe.
		return 0, nil, fmt.Errorf("mark %d published rows sent (they will be republished): %w", len(sent), err)
	}
	for src, ds := range deadBy {
		for _, d := range ds {
			delete(r.refused, rowKey{src, d.ID})
			r.Log.Error("outbox row dead-lettered: Kafka refuses it; the rows after it flow on", "outbox", r.Sources[src].Name, "row", d.ID, "reason", d.Reason)
		}
	}
	if m := r.Metrics; m != nil {
		for _, i := range which {
			if len(claimed[i]) == 0 {
				continue
			}
			name := r.Sources[i].Name
			m.published.WithLabelValues(name).Add(float64(len(sentBy[i])))
			m.dead.WithLabelValues(name).Add(float64(len(deadBy[i])))
			m.publishDur.WithLabelValues(name).Observe(published.Sub(start).Seconds())
			created := make(map[int64]time.Time, len(claimed[i]))
			for _, row := range claimed[i] {
				created[row.ID] = row.CreatedAt
			}
			for _, id := range sentBy[i] {
				m.delay.WithLabelValues(name).Observe(published.Sub(created[id]).Seconds())
			}
		}
	}
	if perr != nil {
		return len(sent), nil, fmt.Errorf("publish %d of %d rows: %w", len(rows)-len(sent)-len(dead), len(rows), perr)
	}
	return len(sent), full, nil
}

func (r *Relay) claimer() Claimer {
	if r.Claimer != nil {
		return r.Claimer
	}
	return storeClaimer(r.Sources)
}

// storeClaimer claims through each source's own Store.
type storeClaimer []Source

func (sc storeClaimer) ClaimAll(ctx context.Context, which []int, limit int) (Claim, error) {
	c := &storeClaim{rows: map[int][]Row{}, batches: map[int]Batch{}}
	for _, i := range which {
		b, err := sc[i].Store.Claim(ctx, limit)
		if err != nil {
			c.Release(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("claim rows of %s: %w", sc[i].Name, err)
		}
		if rs := b.Rows(); len(rs) > 0 {
			c.rows[i], c.batches[i] = rs, b
		} else {
			b.Release(ctx)
		}
	}
	return c, nil
}

type storeClaim struct {
	rows    map[int][]Row
	batches map[int]Batch
}

func (c *storeClaim) Rows() map[int][]Row { return c.rows }

func (c *storeClaim) Finish(ctx context.Context, sent map[int][]int64, dead map[int][]Dead) error {
	var errs error
	for i, b := range c.batches {
		if err := b.Finish(ctx, sent[i], dead[i]); err != nil {
			errs = errors.Join(errs, err)
		}
	}
	return errs
}

func (c *storeClaim) Release(ctx context.Context) {
	for _, b := range c.batches {
		b.Release(ctx)
	}
}

// markThenPublish is FailMarkBeforeCommit: every claimed row is marked sent
// first, then published; whatever does not reach Kafka after that is lost.
func (r *Relay) markThenPublish(ctx context.Context, c Claim, rows []Row, keys []rowKey) (int, []int, error) {
	sent := map[int][]int64{}
	for _, k := range keys {
		sent[k.source] = append(sent[k.source], k.id)
	}
	if err := c.Finish(context.WithoutCancel(ctx), sent, nil); err != nil {
		return 0, nil, fmt.Errorf("mark %d rows sent: %w", len(rows), err)
	}
	r.Log.Warn("failpoint "+FailMarkBeforeCommit+": rows marked sent before their Kafka commit", "rows", len(rows))
	failpoint.Hit(FailBeforePublish)
	if _, _, err := r.publishAll(ctx, rows, keys); err != nil {
		return 0, nil, fmt.Errorf("publish %d rows already marked sent (lost): %w", len(rows), err)
	}
	return len(rows), nil, nil
}

// deadRow is a row given up on, with why.
type deadRow struct {
	rowKey
	reason string
}

// publishAll publishes rows in one transaction. When that fails it publishes
// them one by one, in order, to find a row Kafka refuses for itself: such a
// row is retried on later steps and dead after MaxAttempts refusals, and the
// rows before it are sent. Any other failure stops at the row it hit, which
// stays unsent with the rest.
func (r *Relay) publishAll(ctx context.Context, rows []Row, keys []rowKey) (sent []rowKey, dead []deadRow, err error) {
	err = r.publish(ctx, rows)
	if err == nil {
		return keys, nil, nil
	}
	if ctx.Err() != nil || (len(rows) > 1 && !deadletter.Refused(err)) {
		return nil, nil, err
	}
	for i, row := range rows {
		err := r.publish(ctx, []Row{row})
		if err == nil {
			sent = append(sent, keys[i])
			continue
		}
		if !deadletter.Refused(err) || ctx.Err() != nil {
			return sent, dead, err
		}
		if r.refused == nil {
			r.refused = map[rowKey]int{}
		}
		r.refused[keys[i]]++
		if r.refused[keys[i]] < MaxAttempts {
			return sent, dead, fmt.Errorf("row %d refused (attempt %d of %d): %w", row.ID, r.refused[keys[i]], MaxAttempts, err)
		}
		dead = append(dead, deadRow{keys[i], fmt.Sprintf("kafka refused it %d times: %v", MaxAttempts, err)})
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
