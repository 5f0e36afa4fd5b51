package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/telemetry"
)

// worker processes one partition's records in order. It marks a record for
// commit only once it is fully handled; a transient failure pauses the
// partition's fetching and retries the same record until it succeeds or the
// partition is taken away.
type worker struct {
	c     *Consumer
	topic string
	part  int32

	ctx    context.Context // cancelled by stop: no new record, no more backoff
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	queue    []queued
	skipNext bool // FailDropPoison: the record after a dropped one goes too
	hw       int64
	wake     chan struct{}
	retrying bool
	paused   bool
}

// queued is a fetched record and when its poll returned it.
type queued struct {
	r       *kgo.Record
	fetched time.Time
}

func newWorker(c *Consumer, topic string, part int32) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{c: c, topic: topic, part: part, ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1), hw: -1}
}

func (w *worker) push(rs []*kgo.Record, hw int64) {
	now := time.Now()
	w.mu.Lock()
	for _, r := range rs {
		w.queue = append(w.queue, queued{r, now})
	}
	w.hw = hw
	w.mu.Unlock()
	w.updatePause()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) pop() (queued, int64, bool) {
	for {
		if w.ctx.Err() != nil {
			return queued{}, 0, false // stopped: what is left is redelivered to the next owner
		}
		w.mu.Lock()
		if len(w.queue) > 0 {
			q := w.queue[0]
			w.queue[0] = queued{}
			w.queue = w.queue[1:]
			hw := w.hw
			w.mu.Unlock()
			return q, hw, true
		}
		w.mu.Unlock()
		select {
		case <-w.ctx.Done():
			return queued{}, 0, false
		case <-w.wake:
		}
	}
}

func (w *worker) stop() { w.cancel() }

func (w *worker) setRetrying(v bool) {
	w.mu.Lock()
	w.retrying = v
	w.mu.Unlock()
	w.updatePause()
}

// updatePause pauses fetching while the partition is retrying or its queue
// is full, and resumes it otherwise (always once the worker has stopped, so
// a later owner of the partition on this member fetches it again).
func (w *worker) updatePause() {
	w.mu.Lock()
	want := w.ctx.Err() == nil && (w.retrying || len(w.queue) >= w.c.cfg.MaxQueue)
	if want == w.paused || w.c.cl == nil {
		w.mu.Unlock()
		return
	}
	w.paused = want
	w.mu.Unlock()
	parts := map[string][]int32{w.topic: {w.part}}
	if want {
		w.c.cl.PauseFetchPartitions(parts)
		w.c.m.pause(1)
	} else {
		w.c.cl.ResumeFetchPartitions(parts)
		w.c.m.pause(-1)
	}
}

func (w *worker) run() {
	defer close(w.done)
	defer w.updatePause()
	for {
		q, hw, ok := w.pop()
		if !ok {
			return
		}
		r, popped := q.r, time.Now()
		if w.c.km != nil {
			w.c.km.ObserveConsumed(w.c.cfg.Group, r, hw, popped)
		}
		if w.skipNext {
			// FailDropPoison: the offset arithmetic that skipped the poison
			// record skips this one with it.
			w.skipNext = false
			w.c.log.Warn("failpoint "+FailDropPoison+": record skipped with the poison before it", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
			w.c.markDone(r)
			continue
		}
		if failpoint.Armed(FailCommitBeforeStart) {
			// Marked (and so committed) before its workflow starts: a member
			// that dies or loses the partition meanwhile leaves it behind.
			w.c.markDone(r)
		}
		if !w.handle(r) {
			return // stopped while retrying: not marked, the next owner redoes it
		}
		w.c.markDone(r)
		w.c.slow(r, q.fetched, popped, time.Now())
		w.mu.Lock()
		drained := len(w.queue) < w.c.cfg.MaxQueue/2
		w.mu.Unlock()
		if drained {
			w.updatePause()
		}
	}
}

// handle processes r until it is done (true) or the worker is stopped (false).
func (w *worker) handle(r *kgo.Record) bool {
	backoff := w.c.cfg.RetryInitial
	for attempt := 1; ; attempt++ {
		err := w.process(r)
		if err == nil {
			if attempt > 1 {
				w.setRetrying(false)
				w.c.log.Info("recovered after transient failures", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "attempts", attempt)
			}
			return true
		}
		if attempt == 1 {
			w.setRetrying(true)
		}
		w.c.m.retry(r.Topic)
		w.c.log.Warn("transient failure; partition paused, retrying", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
			"attempt", attempt, "backoff", backoff, "err", err, "correlation_id", deadletter.Reason(kafka.Header(r, event.HeaderCorrelationID)))
		t := time.NewTimer(backoff)
		select {
		case <-w.ctx.Done():
			t.Stop()
			w.setRetrying(false)
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, w.c.cfg.RetryMax)
	}
}

// process handles one record once. A nil error means it may be committed:
// the call succeeded, or the record was dead-lettered or is not for us.
func (w *worker) process(r *kgo.Record) error {
	cid := kafka.Header(r, event.HeaderCorrelationID)
	if !event.ValidCorrelationID(cid) {
		// Missing, or nothing the later hops would take (a hostile producer's
		// 600 KB header): the envelope's, checked by Decode, stands in.
		cid = ""
	}
	// Calls run to completion even when the partition is being revoked, so a
	// start that reached Temporal is also marked and committed.
	ctx, cancel := context.WithTimeout(telemetry.WithCorrelationID(context.WithoutCancel(w.ctx), cid), w.c.cfg.CallTimeout)
	defer cancel()
	if failpoint.Armed(FailSlow) {
		time.Sleep(slowBy)
	}

	env, err := event.Decode(r.Value)
	if err != nil {
		return w.deadLetter(ctx, r, err)
	}
	if cid == "" {
		cid = env.CorrelationID
		ctx = telemetry.WithCorrelationID(ctx, cid)
	}
	switch {
	case r.Topic == w.c.cfg.OrdersTopic && env.Type == event.TypeOrderCreated:
		o, err := event.DecodeData[event.OrderCreated](env)
		if err != nil {
			return w.deadLetter(ctx, r, err)
		}
		return w.refused(ctx, r, w.start(ctx, saga.Input{Order: o, CorrelationID: cid}))
	case r.Topic == w.c.cfg.ShippingTopic && env.Type == event.TypeShipmentDelivered:
		d, err := event.DecodeData[event.ShipmentDelivered](env)
		if err == nil && d.OrderID == "" {
			err = &event.DecodeError{Type: env.Type, Field: "data.orderId", Reason: "missing"}
		}
		if err != nil {
			return w.deadLetter(ctx, r, err)
		}
		return w.refused(ctx, r, w.signal(ctx, d, env.OccurredAt))
	}
	w.c.m.skip(r.Topic)
	return nil
}

func (w *worker) start(ctx context.Context, in saga.Input) error {
	t0 := time.Now()
	err := w.c.starter.StartOrder(ctx, in)
	w.c.m.startDuration(time.Since(t0))
	log := w.c.log
	switch {
	case err == nil:
		w.c.m.start("started")
		log.InfoContext(ctx, "workflow started", "order_id", in.Order.OrderID, "workflow_id", saga.WorkflowID(in.Order.OrderID))
		return nil
	case errors.Is(err, ErrAlreadyStarted):
		w.c.m.start("already_started")
		log.InfoContext(ctx, "workflow already started", "order_id", in.Order.OrderID, "workflow_id", saga.WorkflowID(in.Order.OrderID))
		return nil
	case errors.Is(err, ErrRefused):
		w.c.m.start("refused")
		return err
	}
	w.c.m.start("error")
	return fmt.Errorf("start workflow %s: %w", saga.WorkflowID(in.Order.OrderID), err)
}

func (w *worker) signal(ctx context.Context, d event.ShipmentDelivered, at time.Time) error {
	err := w.c.signaler.SignalDelivered(ctx, d.OrderID, saga.DeliveredSignal{ShipmentID: d.ShipmentID, DeliveredAt: at})
	switch {
	case err == nil:
		w.c.m.signal("signalled")
		w.c.log.InfoContext(ctx, "delivered signal sent", "order_id", d.OrderID, "shipment_id", d.ShipmentID)
		return nil
	case errors.Is(err, ErrWorkflowNotFound):
		w.c.m.signal("not_found")
		w.c.log.WarnContext(ctx, "delivered signal dropped: no running workflow", "order_id", d.OrderID, "shipment_id", d.ShipmentID, "err", err)
		return nil
	case errors.Is(err, ErrRefused):
		w.c.m.signal("refused")
		return err
	}
	w.c.m.signal("error")
	return fmt.Errorf("signal %s: %w", saga.WorkflowID(d.OrderID), err)
}

// refused dead-letters r when Temporal refused the call made for it
// (ErrRefused: retrying cannot help) and returns err otherwise.
func (w *worker) refused(ctx context.Context, r *kgo.Record, err error) error {
	if errors.Is(err, ErrRefused) {
		return w.deadLetter(ctx, r, err)
	}
	return err
}

// deadLetter sends r to the dead-letter topic with why in a header. A failed
// produce is retried (the record is never skipped for the state of Kafka),
// except when Kafka refuses the dead letter itself: then r is logged and
// dropped, counted as such, so that no record can stop the partition.
func (w *worker) deadLetter(ctx context.Context, r *kgo.Record, why error) error {
	if failpoint.Armed(FailDropPoison) {
		w.c.log.WarnContext(ctx, "failpoint "+FailDropPoison+": record dropped without dead-lettering", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", why.Error())
		w.skipNext = true
		return nil
	}
	reason := "envelope"
	var de *event.DecodeError
	switch {
	case errors.As(why, &de) && de.Field != "":
		reason = de.Field
	case errors.Is(why, ErrRefused):
		reason = "temporal"
	}
	if err := w.c.cl.ProduceSync(ctx, deadletter.Record(w.c.cfg.DLQTopic, r, why.Error())).FirstErr(); err != nil {
		if !deadletter.Refused(err) {
			return fmt.Errorf("dead-letter %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		reason = "dlq-refused"
		w.c.log.ErrorContext(ctx, "record dropped: the dead-letter topic refuses it too", "topic", r.Topic, "partition", r.Partition,
			"offset", r.Offset, "reason", why.Error(), "dlq_err", err, "key", deadletter.Reason(string(r.Key)))
	} else {
		w.c.log.WarnContext(ctx, "record dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", why.Error())
	}
	if w.c.km != nil {
		w.c.km.DeadLettered(r.Topic, reason)
	}
	return nil
}

func (m *Metrics) start(result string) {
	if m != nil {
		m.started.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) startDuration(d time.Duration) {
	if m != nil {
		m.startDur.Observe(d.Seconds())
	}
}

func (m *Metrics) signal(result string) {
	if m != nil {
		m.signals.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) skip(topic string) {
	if m != nil {
		m.skipped.WithLabelValues(topic).Inc()
	}
}

func (m *Metrics) retry(topic string) {
	if m != nil {
		m.retries.WithLabelValues(topic).Inc()
	}
}

func (m *Metrics) pause(d float64) {
	if m != nil {
		m.paused.Add(d)
	}
}
