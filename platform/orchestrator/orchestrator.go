// Package orchestrator turns Kafka events into Temporal workflow calls: every
// order.created on the orders topic starts the order's saga workflow, every
// shipment.delivered on the shipping topic signals it.
//
// Offsets are committed only after Temporal accepted the call (a workflow that
// is already started counts as accepted), so a crash never loses an order; a
// record that is not a valid event goes to the dead-letter topic, and a
// Temporal outage pauses the partition instead of skipping anything. It must
// never decide anything about the order itself: that is the workflow's job.
package orchestrator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/saga"
)

// Group is the consumer group of the orchestrator members.
const Group = "order-orchestrator"

// Errors a Starter or Signaler returns for outcomes that are not failures.
var (
	// ErrAlreadyStarted: a workflow with this id exists (running or closed);
	// the order's saga was started before, which is what we wanted.
	ErrAlreadyStarted = errors.New("orchestrator: workflow already started")
	// ErrWorkflowNotFound: no running workflow to signal (unknown or finished).
	ErrWorkflowNotFound = errors.New("orchestrator: workflow not found or already closed")
	// ErrRefused: Temporal refuses the call for what it carries (an invalid
	// argument, a payload over its size limit), so no retry can succeed; the
	// record is dead-lettered and the partition flows on.
	ErrRefused = errors.New("orchestrator: temporal refuses the call")
)

// Starter starts the saga workflow of an order. It returns ErrAlreadyStarted
// (possibly wrapped) when the workflow exists and ErrRefused when Temporal
// refuses the start itself; any other error is treated as transient and
// retried.
type Starter interface {
	StartOrder(ctx context.Context, in saga.Input) error
}

// Signaler delivers the delivered signal to an order's workflow. It returns
// ErrWorkflowNotFound (possibly wrapped) when there is no running workflow
// and ErrRefused when Temporal refuses the signal itself; any other error is
// treated as transient and retried.
type Signaler interface {
	SignalDelivered(ctx context.Context, orderID string, s saga.DeliveredSignal) error
}

// Config tunes a Consumer; zero values take the defaults.
type Config struct {
	Group        string        // consumer group, default Group
	CallTimeout  time.Duration // one Temporal call, default 5 s
	RetryInitial time.Duration // first backoff after a transient error, default 100 ms
	RetryMax     time.Duration // backoff ceiling, default 5 s
	MaxQueue     int           // records buffered per partition before its fetch is paused, default 500
	// CommitInterval is the background autocommit of marked offsets, default
	// 1 s. Marked offsets are also committed promptly (see CommitGap), since
	// the group's committed offsets are what its lag is measured from.
	CommitInterval time.Duration
	// CommitGap is the least time between two prompt commits, default 2 ms:
	// marks made meanwhile go out together in the next one.
	CommitGap time.Duration
	// SlowRecord: a record whose produce-to-handled time reaches it is
	// logged with where that time went (Kafka delivery, the partition's
	// queue, the Temporal call), and so is a commit that takes it; the
	// group's lag is the sum. Default 50 ms; negative turns it off.
	SlowRecord     time.Duration
	ServerAssigned bool // KIP-848 consumer protocol (broker assigns) instead of classic cooperative-sticky
	// SessionTimeout is how long a member may miss heartbeats before its
	// partitions move: for the classic protocol the client's session.timeout.ms
	// (default 6 s), for KIP-848 the group's consumer.session.timeout.ms, set by
	// Run when non-zero (zero leaves the broker's group.consumer.session.timeout.ms).
	// Heartbeats go every sixth of it (at least 500 ms).
	SessionTimeout time.Duration

	// Topics, default event.TopicOrders, event.TopicShipping and
	// event.TopicOrdersDLQ; tests on the shared stack use topics of their own.
	OrdersTopic, ShippingTopic, DLQTopic string
}

func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = Group
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 500
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.CommitGap <= 0 {
		c.CommitGap = 2 * time.Millisecond
	}
	if c.SlowRecord == 0 {
		c.SlowRecord = 50 * time.Millisecond
	}
	if c.OrdersTopic == "" {
		c.OrdersTopic = event.TopicOrders
	}
	if c.ShippingTopic == "" {
		c.ShippingTopic = event.TopicShipping
	}
	if c.DLQTopic == "" {
		c.DLQTopic = event.TopicOrdersDLQ
	}
	return c
}

// Consumer is one orchestrator member: it polls its partitions and hands each
// partition's records, in order, to a goroutine of its own.
type Consumer struct {
	cfg      Config
	starter  Starter
	signaler Signaler
	log      *slog.Logger
	km       *kafka.Metrics
	m        *Metrics

	cl *kgo.Client

	mu      sync.Mutex
	workers map[tp]*worker

	marked chan struct{} // a record was marked: commit soon (buffer 1, coalescing)
}

type tp struct {
	topic string
	part  int32
}

// New returns a Consumer. Build its client with Opts (plus the caller's
// BaseOpts and hooks) and hand it to Run.
func New(cfg Config, starter Starter, signaler Signaler, log *slog.Logger, km *kafka.Metrics, m *Metrics) *Consumer {
	return &Consumer{
		cfg:      cfg.withDefaults(),
		starter:  starter,
		signaler: signaler,
		log:      log,
		km:       km,
		m:        m,
		workers:  map[tp]*worker{},
		marked:   make(chan struct{}, 1),
	}
}

// Opts are the consumer options of a member: read_committed, commits of
// marked (processed) offsets only, the cooperative or KIP-848 group protocol,
// and the rebalance callbacks that stop a partition's worker before it moves.
func (c *Consumer) Opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(c.cfg.OrdersTopic, c.cfg.ShippingTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only offsets of records whose workflow call succeeded are marked, and
		// only marks are committed.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(c.cfg.CommitInterval),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.OnPartitionsAssigned(c.onAssigned),
		// A fetch returns as soon as a record arrives (FetchMinBytes 1), so the
		// longest wait only sets how often an idle member asks the broker:
		// every 100 ms was 10 empty fetches a second per member for nothing.
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if c.cfg.ServerAssigned {
		// KIP-848: the broker assigns (uniform assignor, sticky); the session
		// timeout is the group's consumer.session.timeout.ms (set by Run) or
		// the broker's group.consumer.session.timeout.ms.
		opts = append(opts, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	} else {
		// The broker bounds the session timeout by group.min.session.timeout.ms
		// (2 s in the stack); a SIGKILLed member's partitions move after it.
		session := c.cfg.SessionTimeout
		if session <= 0 {
			session = 6 * time.Second
		}
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.SessionTimeout(session), kgo.HeartbeatInterval(heartbeatFor(session)))
	}
	return opts
}

// Run consumes with cl (built with Opts) until ctx is done, then finishes
// in-flight calls, commits what was processed and leaves the group.
func (c *Consumer) Run(ctx context.Context, cl *kgo.Client) error {
	c.cl = cl
	if c.cfg.ServerAssigned && c.cfg.SessionTimeout > 0 {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := SetGroupSessionTimeout(sctx, cl, c.cfg.Group, c.cfg.SessionTimeout, heartbeatFor(c.cfg.SessionTimeout))
		cancel()
		if err != nil {
			c.log.Warn("group session timeout not set; the broker default applies", "err", err)
		}
	}
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		c.commitPromptly(ctx, cl)
	}()
	defer func() { <-committed }()
	for {
		fs := cl.PollRecords(ctx, 1000)
		if fs.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			break
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("fetch error", "topic", topic, "partition", part, "err", err)
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				c.worker(p.Topic, p.Partition).push(p.Records, p.HighWatermark)
			}
		})
		cl.AllowRebalance()
	}
	c.stopAll(nil)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		c.log.Warn("final commit", "err", err)
	}
	if err := cl.LeaveGroupContext(cctx); err != nil {
		c.log.Warn("leave group", "err", err)
	}
	c.log.Info("orchestrator consumer stopped", "group", c.cfg.Group)
	return nil
}

// commitPromptly commits marked offsets soon after each mark, one commit at
// a time and at most one per CommitGap, until ctx is done (Run then makes
// the final commit). A failed commit is retried with the next mark or by the
// background autocommit.
func (c *Consumer) commitPromptly(ctx context.Context, cl *kgo.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.marked:
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		t0 := time.Now()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && ctx.Err() == nil {
			c.log.Warn("commit", "err", err)
		} else if d := time.Since(t0); c.cfg.SlowRecord > 0 && d >= c.cfg.SlowRecord {
			c.log.Info("slow commit", "took", d)
		}
		cancel()
		t := time.NewTimer(c.cfg.CommitGap)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// slow logs the time line of a record that took SlowRecord or more from its
// produce (the record's timestamp) to done, its mark: fetched is when the
// poll returned it, popped when its partition's worker took it up.
func (c *Consumer) slow(r *kgo.Record, fetched, popped, done time.Time) {
	total := done.Sub(r.Timestamp)
	if c.cfg.SlowRecord <= 0 || total < c.cfg.SlowRecord {
		return
	}
	c.log.Info("slow record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "total", total,
		"delivery", fetched.Sub(r.Timestamp), "queued", popped.Sub(fetched), "handling", done.Sub(popped))
}

// markDone marks r as processed and asks for a prompt commit.
func (c *Consumer) markDone(r *kgo.Record) {
	if c.cl == nil {
		return
	}
	c.cl.MarkCommitRecords(r)
	select {
	case c.marked <- struct{}{}:
	default: // a commit is already due
	}
}

func (c *Consumer) worker(topic string, part int32) *worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := tp{topic, part}
	w, ok := c.workers[k]
	if !ok {
		w = newWorker(c, topic, part)
		c.workers[k] = w
		go w.run()
	}
	return w
}

// stopAll stops the workers of the given partitions (all when nil) after
// their in-flight call, and waits for them.
func (c *Consumer) stopAll(parts map[string][]int32) {
	c.mu.Lock()
	var stopping []*worker
	for k, w := range c.workers {
		if parts != nil && !contains(parts[k.topic], k.part) {
			continue
		}
		delete(c.workers, k)
		stopping = append(stopping, w)
	}
	c.mu.Unlock()
	for _, w := range stopping {
		w.stop()
	}
	for _, w := range stopping {
		<-w.done
	}
}

func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	n := 0
	for _, ps := range parts {
		n += len(ps)
	}
	if c.km != nil {
		c.km.Rebalance(c.cfg.Group, "assigned")
	}
	c.m.owned(parts, 1)
	c.log.Info("partitions assigned", "group", c.cfg.Group, "partitions", parts, "count", n)
}

func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	c.stopAll(parts)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		c.log.Warn("commit on revoke", "err", err)
	}
	if c.km != nil {
		c.km.Rebalance(c.cfg.Group, "revoked")
	}
	c.m.owned(parts, -1)
	c.log.Info("partitions revoked", "group", c.cfg.Group, "partitions", parts)
}

func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.stopAll(parts)
	if c.km != nil {
		c.km.Rebalance(c.cfg.Group, "lost")
	}
	c.m.owned(parts, -1)
	c.log.Warn("partitions lost", "group", c.cfg.Group, "partitions", parts)
}

// heartbeatFor is a sixth of the session timeout, at least the 500 ms the
// stack's broker allows: after a member is dropped, survivors learn of their
// new partitions at their next heartbeat, so a short interval shortens the
// time a dead member's partitions stay unowned (cheap: one small request).
func heartbeatFor(session time.Duration) time.Duration {
	return min(max(session/6, 500*time.Millisecond), 3*time.Second)
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Metrics are the orchestrator's own series; the Kafka ones live in kafka.Metrics.
type Metrics struct {
	started    *prometheus.CounterVec
	startDur   prometheus.Histogram
	signals    *prometheus.CounterVec
	skipped    *prometheus.CounterVec
	retries    *prometheus.CounterVec
	paused     prometheus.Gauge
	partitions *prometheus.GaugeVec
}

// NewMetrics registers the orchestrator metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_orchestrator_workflows_started_total",
			Help: "Workflow start calls, by result: started, already_started (a duplicate or redelivery, counted as success), refused (Temporal refuses what it carries; dead-lettered) or error (retried).",
		}, []string{"result"}),
		startDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stampede_orchestrator_start_duration_seconds",
			Help:    "Duration of one workflow start call to Temporal.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_orchestrator_signals_total",
			Help: "Delivered signals sent, by result: signalled, not_found (workflow unknown or closed; committed), refused (dead-lettered) or error (retried).",
		}, []string{"result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_orchestrator_records_skipped_total",
			Help: "Valid records of event types the orchestrator does not act on, by topic.",
		}, []string{"topic"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_orchestrator_retries_total",
			Help: "Transient failures retried with backoff, by topic.",
		}, []string{"topic"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stampede_orchestrator_paused_partitions",
			Help: "Partitions whose fetching is paused (retrying a transient failure or a full queue).",
		}),
		partitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_orchestrator_assigned_partitions",
			Help: "Partitions this member owns, by topic.",
		}, []string{"topic"}),
	}
	reg.MustRegister(m.started, m.startDur, m.signals, m.skipped, m.retries, m.paused, m.partitions)
	return m
}

func (m *Metrics) owned(parts map[string][]int32, sign float64) {
	if m == nil {
		return
	}
	for topic, ps := range parts {
		m.partitions.WithLabelValues(topic).Add(sign * float64(len(ps)))
	}
}
