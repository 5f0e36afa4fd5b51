package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/stampede-dev/stampede/harness/bench"
	"github.com/stampede-dev/stampede/harness/lagsample"
	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/stack"
	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/harness/verify"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/temporalclient"
	"github.com/stampede-dev/stampede/platform/web"
)

// Stack is what the experiment needs of the launcher (*stack.Stack).
type Stack interface {
	Names() []string
	Status(ctx context.Context) []stack.State
	Kill(name string, sig syscall.Signal) (int, error)
	Start(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Pid(name string) int
}

var _ Stack = (*stack.Stack)(nil)

// Config is one experiment.
type Config struct {
	Run      string // results/<Run>
	Out      string // the run directory
	Profile  string
	Faults   []Planned
	Duration time.Duration // k6 DURATION
	BaseRate float64
	Seed     int64
	Limits   verify.Limits
	Command  string // as typed, for the report

	K6, Script, OrdersURL string
	K6Env                 []string // extra KEY=VALUE for k6
	PromURL               string   // http://127.0.0.1:9090
	ToxiproxyAddr         string
	Brokers               []string
	Group, Topic          string
	PostgresURL           string
	TemporalAddr          string
	Namespace             string

	// ChargeLatency, when positive, restarts Payments with
	// STAMPEDE_PAYMENTS_CHARGE_LATENCY for the run (restored after), so
	// charges are in flight when the kill lands.
	ChargeLatency time.Duration
	// OutageBudget, when positive, restarts the workers with
	// STAMPEDE_OUTAGE_BUDGET for the run (restored after).
	OutageBudget  time.Duration
	SettleTimeout time.Duration
	// IgnoreSteadyState runs the method even when the hypothesis fails
	// before it (a shared development stack); the probes are still reported.
	IgnoreSteadyState bool
	// Leftovers: orders placed before the run that are stuck are not the
	// run's (the selftest's mutated runs leave such orders on purpose);
	// without it they fail the hypothesis before the run.
	Leftovers bool
	// SteadyWait is how long the hypothesis may take to hold before the
	// method (the selftest's next run starts right after the last one's
	// rollback); 0: it must hold at once.
	SteadyWait time.Duration
	// Warmup, when positive, places orders through the full saga at
	// WarmupRate for this long before the run (before the hypothesis and
	// every watcher), and waits for them to settle: a freshly started
	// stack (Kafka's JVM compiling its hot code, Temporal's caches, every
	// first connection) answers its first minute slower than it ever does
	// again, and the run's lag would measure that start, not the platform
	// under load. The warm-up's orders are not the run's: they are placed
	// and settled before it starts and the audit looks at what came after.
	Warmup     time.Duration
	WarmupRate int
	// Noise, when positive, runs NoiseBin (stampede) as a CPU hog of that
	// many cores at normal priority for the whole load.
	Noise    float64
	NoiseBin string

	// Platform is verify.PlatformSaga (the default) or verify.PlatformRest:
	// the REST-chain baseline, for which Orders is restarted with
	// restchain.Env for the run and the audit reads the stores alone.
	Platform string
	// Mutation names the defect armed for the run (the selftest), for the
	// report; Arm is where its failpoints go.
	Mutation string
	Arm      []Arming
	// SharedStack: other clients use the stack, so what the stores hold
	// beyond the ledger (orphans) is reported, not gated.
	SharedStack bool
	// OrdersURL (above) is also where the audit reads each order's view.

	Stack    Stack
	Progress io.Writer // the live line; nil for none
	// PlainProgress prints the line every 10 s instead of redrawing it
	// (output that is not a terminal: CI logs).
	PlainProgress bool
	Log           io.Writer // what happens, line by line
}

// Arming puts failpoints (platform/failpoint) in a component's environment
// for the run; a Component ending in "*" is every component with that prefix
// ("worker-*"). The rollback restarts it without them.
type Arming struct {
	Component  string   `json:"component"`
	Failpoints []string `json:"failpoints"`
}

// Experiment is a running chaos experiment.
type Experiment struct {
	cfg   Config
	res   *report.Result
	cpu   bench.HostCPU // the host's CPU times when the run began
	k6Pid atomic.Int64  // the load generator's pid once started, for the CPU meter

	mu        sync.Mutex
	active    map[string]bool              // fault -> active now
	broken    map[string]bool              // components we stopped and must bring back
	modified  map[string]map[string]string // component -> the env it runs with for the run
	records   []*report.FaultRecord
	faults    []*faultRun // the plan, in order, each with its Fault and record
	phase     string
	placed    int
	acked     int
	settling  int
	settleWhy string

	sampler  *lagsample.Sampler // the orchestrators on orders: the steady-state probe's
	samplers []lagSource        // every consumer the saga depends on, and the projection
	temporal client.Client
	settled  time.Time
	recorder *Recorder
	toxics   *Toxics
	// stuckBefore are the orders the before probe found stuck.
	stuckBefore map[string]bool
}

func (e *Experiment) logf(format string, args ...any) {
	if e.cfg.Log != nil {
		e.clearLine()
		fmt.Fprintf(e.cfg.Log, time.Now().UTC().Format("15:04:05 ")+format+"\n", args...)
	}
}

// New prepares an experiment.
func New(cfg Config) *Experiment {
	if cfg.Group == "" {
		cfg.Group = "order-orchestrator"
	}
	if cfg.Topic == "" {
		cfg.Topic = "orders"
	}
	if cfg.SettleTimeout == 0 {
		cfg.SettleTimeout = 3 * time.Minute
	}
	e := &Experiment{cfg: cfg, active: map[string]bool{}, broken: map[string]bool{}, modified: map[string]map[string]string{},
		toxics: NewToxics(cfg.ToxiproxyAddr)}
	for _, p := range cfg.Faults {
		rec := &report.FaultRecord{Name: p.Name, Kind: string(p.Kind), Target: p.Target, Note: p.Note,
			Consumer: p.Consumer, PlannedAt: p.At, Planned: p.Duration}
		e.records = append(e.records, rec)
		e.faults = append(e.faults, e.newFaultRun(p, rec))
		e.active[p.Name] = false
	}
	return e
}

// ErrGates is returned when the run completed and a gate failed.
var ErrGates = errors.New("chaos: gates failed")

// ErrSteadyState is returned when the hypothesis failed before the method.
var ErrSteadyState = errors.New("chaos: steady-state hypothesis failed before the run")

// ErrBadInput is returned when the harness was given something it cannot
// work with (a run directory that exists, a store or Temporal that is not
// there, a ledger it cannot read): no verdict was reached.
var ErrBadInput = errors.New("chaos: bad input")

// Run runs the experiment and writes its report: the steady-state
// hypothesis, the method (load and faults), the audit (ground truth, lag,
// the hypothesis again, the gates), and the rollback, which runs whatever
// happens, ctx cancelled (Ctrl-C) included.
func (e *Experiment) Run(ctx context.Context) (res *report.Result, err error) {
	r := e.newResult()
	if _, err := os.Stat(e.cfg.Out); err == nil {
		// Never mix two runs' ledgers and reports.
		return nil, fmt.Errorf("%w: run directory %s exists: give --out a new one", ErrBadInput, e.cfg.Out)
	}
	if err := os.MkdirAll(e.cfg.Out, 0o755); err != nil {
		return r, err
	}
	defer func() { err = e.finish(r, err) }()

	if err := e.warmup(ctx); err != nil {
		return r, err
	}
	w, err := e.watch(ctx)
	if err != nil {
		return r, err
	}
	defer w.close()

	if err := e.steadyState(ctx, w); err != nil {
		return r, err
	}
	l, err := e.method(ctx, w)
	if err != nil {
		return r, err
	}
	return r, e.audit(ctx, w, l)
}

// warmup is Config.Warmup: orders at WarmupRate through bench.Saga, then
// the run's own clock starts. The warm-up is reported; it is not audited.
func (e *Experiment) warmup(ctx context.Context) error {
	cfg := e.cfg
	if cfg.Warmup <= 0 || cfg.WarmupRate <= 0 {
		return nil
	}
	e.setPhase("warm-up")
	e.logf("warm-up: %d orders/s for %s through the full saga, before the run (not audited)", cfg.WarmupRate, cfg.Warmup)
	sr, err := bench.Saga(ctx, bench.SagaOptions{OrdersURL: cfg.OrdersURL, Rate: cfg.WarmupRate, Duration: cfg.Warmup,
		Settle: time.Minute, RunID: cfg.Run + "-warmup"})
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	w := &report.Warmup{Duration: cfg.Warmup, Rate: cfg.WarmupRate, Placed: sr.Placed, Rejected: sr.Rejected,
		Completed: sr.Completed, Failed: sr.Failed, NotSettled: sr.NotSettled, Ended: time.Now()}
	e.res.Warmup = w
	e.logf("warm-up: %d placed, %d completed, %d failed, %d rejected, %d not settled", w.Placed, w.Completed, w.Failed, w.Rejected, w.NotSettled)
	// The run starts now: what the stores hold from before is not its own.
	e.res.Started = time.Now()
	return nil
}

// since is the earliest time the audit counts a store's row or a workflow
// as the run's: a minute before it started (slack for the clocks of
// Temporal's visibility), but never before the warm-up ended.
func (e *Experiment) since() time.Time {
	t := e.res.Started.Add(-time.Minute)
	if e.res.Warmup != nil && e.res.Warmup.Ended.After(t) {
		t = e.res.Warmup.Ended
	}
	return t
}

func (e *Experiment) newResult() *report.Result {
	cfg := e.cfg
	e.res = &report.Result{Run: cfg.Run, Profile: cfg.Profile, Seed: cfg.Seed, Command: cfg.Command, Started: time.Now(),
		Counts: map[string]int{}, LagSeries: map[string][]verify.LagSample{},
		K6: report.K6{Report: "k6-report.html", Log: "k6.log", Ledger: "ledger.jsonl", Summary: "summary.json", Duration: cfg.Duration.String(), BaseRate: cfg.BaseRate},
		Config: map[string]string{
			"profile": cfg.Profile, "duration": cfg.Duration.String(), "base-rate": fmt.Sprint(cfg.BaseRate), "seed": fmt.Sprint(cfg.Seed),
			"max-compensation": cfg.Limits.MaxCompensation.String(), "max-lag": cfg.Limits.MaxLag.String(), "max-recovery": cfg.Limits.MaxRecovery.String(),
			"charge-latency": cfg.ChargeLatency.String(), "noise": fmt.Sprint(cfg.Noise), "outage-budget": cfg.OutageBudget.String(), "settle-timeout": cfg.SettleTimeout.String(),
			"script": cfg.Script, "orders-url": cfg.OrdersURL, "group": cfg.Group, "topic": cfg.Topic,
			"platform": cfg.platform(), "mutation": cfg.Mutation, "max-gap": cfg.Limits.MaxGap.String(),
			"intake-margin": cfg.Limits.IntakeMargin.String(), "shared-stack": fmt.Sprint(cfg.SharedStack),
			"loadavg-start": loadavg(),
			// What a CPU-second buys on this host now: the stack's CPU
			// figures below are in CPU-seconds, worth more or less by the hour.
			"host-speed-start": bench.MeasureHostSpeed(5, 100*time.Millisecond).String(),
		}}
	e.cpu = bench.ReadHostCPU()
	return e.res
}

// finish is the end of every run: the rollback, then the report, written
// with err, the run's outcome, which it returns (or the report's own error).
func (e *Experiment) finish(r *report.Result, err error) error {
	r.Rollback = append(r.Rollback, e.rollback()...)
	// The host's load, beside the verdict: lag on a machine other work
	// saturates is not the platform's alone.
	r.Config["loadavg-end"] = loadavg()
	r.Config["cpu-stolen"] = bench.Stolen(e.cpu, bench.ReadHostCPU())
	r.Config["host-speed-end"] = bench.MeasureHostSpeed(5, 100*time.Millisecond).String()
	if e.temporal != nil {
		e.temporal.Close()
	}
	if err != nil && r.Error == "" && !errors.Is(err, ErrGates) {
		r.Error = err.Error()
	}
	r.Finished = time.Now()
	r.Faults = e.faultRecords()
	if werr := report.Write(e.cfg.Out, r); werr != nil && err == nil {
		err = werr
	}
	return err
}

// watchers look at the platform from before the method to the end of the
// audit: the stores (ground truth), Temporal and the consumer-lag samplers;
// beside them run the live progress line and the fault series pushed to
// Prometheus.
type watchers struct {
	facts       verify.DBFacts
	ctx         context.Context // ends with stopSampler
	stopSampler context.CancelFunc
	samplerErr  chan error
	files       []*os.File
	db          *pgxpool.Pool
}

func (w *watchers) close() {
	for _, f := range w.files {
		f.Close()
	}
	w.stopSampler()
	w.db.Close()
}

// lagSource is one consumer group on one topic, sampled from outside.
type lagSource struct {
	name  string
	group string
	topic string
	s     *lagsample.Sampler
}

// lagSources are the consumers the audit measures: the orchestrators on
// orders (order intake, and the steady-state probe's), on shipping (the
// delivered signals the sagas wait for), and the Orders projection on
// order-status (what GET /v1/orders/{id} shows).
func (cfg Config) lagSources() []lagSource {
	return []lagSource{
		{name: SourceSampler, group: cfg.Group, topic: cfg.Topic},
		{name: SourceShipping, group: cfg.Group, topic: event.TopicShipping},
		{name: SourceProjection, group: order.ProjectionGroup, topic: event.TopicOrderStatus},
	}
}

// tailWait is how long the broker may hold the tail fetch of a lag source
// to gather its records: none under the orchestrators' tight gate; for a
// source with a looser limit of its own (the projection's, 1 s by default),
// a tenth of it, at most 100 ms. Its topic, order-status, has six events an
// order in several produce batches, each of which answered a waiting fetch
// at once: most of the broker's fetches at a 20/s peak. Lags under the
// wait read 0, far below that limit.
func (cfg Config) tailWait(source string) time.Duration {
	limit, ok := cfg.Limits.SourceLag[source]
	if !ok || limit <= cfg.Limits.MaxLag {
		return 0
	}
	return min(limit/10, 100*time.Millisecond)
}

func (e *Experiment) watch(ctx context.Context) (*watchers, error) {
	cfg := e.cfg
	db, err := e.preflight(ctx)
	if err != nil {
		return nil, err
	}
	// Probes need lag figures: the samplers run from before the method to
	// after the last probe.
	sctx, stopSampler := context.WithCancel(context.Background())
	w := &watchers{facts: verify.DBFacts{DB: db}, ctx: sctx, stopSampler: stopSampler, samplerErr: make(chan error, 3), db: db}
	for i, src := range cfg.lagSources() {
		name := "lag-samples.jsonl"
		if i > 0 {
			name = "lag-samples-" + src.group + "-" + src.topic + ".jsonl"
		}
		f, err := os.Create(filepath.Join(cfg.Out, name))
		if err != nil {
			w.close()
			return nil, err
		}
		w.files = append(w.files, f)
		src.s = lagsample.New(lagsample.Config{Brokers: cfg.Brokers, Group: src.group, Topic: src.topic, Out: f,
			TailWait: cfg.tailWait(src.name)})
		e.samplers = append(e.samplers, src)
		go func() {
			if err := src.s.Run(sctx); err != nil {
				w.samplerErr <- fmt.Errorf("%s: %w", src.name, err)
			}
		}()
	}
	e.sampler = e.samplers[0].s
	go e.pushFaults(sctx)
	go e.progress(sctx)
	return w, nil
}

// preflight connects to the stores and Temporal and checks that every table
// the audit reads is there, so a run that could never be judged stops
// before it starts, naming what is missing.
func (e *Experiment) preflight(ctx context.Context) (*pgxpool.Pool, error) {
	cfg := e.cfg
	db, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres %s: %v", ErrBadInput, cfg.PostgresURL, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: postgres %s does not answer: %v", ErrBadInput, cfg.PostgresURL, err)
	}
	var missing []string
	for _, t := range verify.Tables {
		var ok bool
		if err := db.QueryRow(pctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&ok); err != nil || !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		db.Close()
		return nil, fmt.Errorf("%w: store missing: no table %s in %s (is the stack up, every service started once?)", ErrBadInput, strings.Join(missing, ", "), cfg.PostgresURL)
	}
	if cfg.platform() == verify.PlatformSaga {
		opts, err := temporalclient.Options(client.Options{HostPort: cfg.TemporalAddr, Namespace: cfg.Namespace, Logger: quiet{}})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("%w: temporal options: %v", ErrBadInput, err)
		}
		c, err := client.DialContext(pctx, opts)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("%w: temporal at %s (namespace %s) does not answer: %v", ErrBadInput, cfg.TemporalAddr, cfg.Namespace, err)
		}
		e.temporal = c
	}
	return db, nil
}

func (cfg Config) platform() string {
	if cfg.Platform == "" {
		return verify.PlatformSaga
	}
	return cfg.Platform
}

// steadyState checks the hypothesis before the method, and that every
// planned fault can run on this stack.
func (e *Experiment) steadyState(ctx context.Context, w *watchers) error {
	e.setPhase("steady state")
	time.Sleep(1500 * time.Millisecond) // a second and a half of lag samples
	select {
	case err := <-w.samplerErr:
		return fmt.Errorf("%w: lag sampler: %v", ErrBadInput, err)
	default:
	}
	e.res.SteadyBefore = e.probe(ctx, w.facts, nil)
	for deadline := time.Now().Add(e.cfg.SteadyWait); !probesOK(e.res.SteadyBefore) && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(2 * time.Second)
		e.res.SteadyBefore = e.probe(ctx, w.facts, nil)
	}
	for _, p := range e.res.SteadyBefore {
		e.logf("steady state before: %-28s %v %s", p.Name, okWord(p.OK), p.Detail)
	}
	if !probesOK(e.res.SteadyBefore) && !e.cfg.IgnoreSteadyState {
		return ErrSteadyState
	}
	return e.checkTargets(ctx)
}

// loaded is what the method leaves to the audit.
type loaded struct {
	exit       int // k6's
	stockAt    time.Time
	stockStart verify.Stock
	stockErr   error
}

// method restarts what the faults need with run-only settings (the
// rollback restores them), then runs the load and the fault schedule side
// by side; it heals the network as soon as the load is over.
func (e *Experiment) method(ctx context.Context, w *watchers) (loaded, error) {
	cfg, r := e.cfg, e.res
	var l loaded
	if err := e.prepare(ctx); err != nil {
		return l, err
	}
	l.stockAt = time.Now()
	l.stockStart, l.stockErr = w.facts.ReadStock(ctx)

	rctx, stopRecorder := context.WithCancel(ctx)
	defer stopRecorder()
	e.recorder = &Recorder{}
	if err := e.recorder.Record(rctx, cfg.Brokers, cfg.Topic, 50); err != nil {
		return l, err
	}

	e.setPhase("load")
	noise, err := StartNoise(ctx, cfg.NoiseBin, cfg.Noise, cfg.Duration+time.Minute)
	if err != nil {
		return l, err
	}
	if noise != nil {
		e.logf("noise: a CPU hog of %g cores runs beside the load", cfg.Noise)
	}
	k6Done := make(chan int, 1)
	k6Start, err := e.startK6(ctx, k6Done)
	if err != nil {
		noise.Stop()
		return l, err
	}
	r.LoadStart = k6Start
	meter, stopMeter := e.meterCPU(ctx)
	fctx, stopFaults := context.WithCancel(ctx)
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); e.runFaults(fctx, k6Start) }()
	go e.countLedger(w.ctx)
	select {
	case l.exit = <-k6Done:
	case <-ctx.Done():
		l.exit = <-k6Done // k6 was interrupted by ctx; wait for it to write what it has
	}
	r.LoadEnd = time.Now()
	stopMeter()
	if sum := cpuSummary(meter.samples(), k6Start, r.LoadEnd, 10*time.Second, hostCores()); sum != "" {
		r.Config["stack-cpu"] = sum
		e.logf("CPU during the load: %s", sum)
	}
	if r.Noise = noise.Stop(); r.Noise != nil {
		e.logf("noise: the hog used %.1f CPU-s in %s (%.2f cores)", r.Noise.CPU.Seconds(), r.Noise.Wall.Round(time.Second), r.Noise.CoresUsed)
	}
	stopFaults()
	<-faultsDone
	stopRecorder()
	r.Rollback = append(r.Rollback, e.healNetwork()...)
	r.K6.Exit = l.exit
	r.K6.Failed = failedThresholds(filepath.Join(cfg.Out, "summary.json"))
	if l.exit != 0 && len(r.K6.Failed) == 0 {
		r.K6.Failed = []string{fmt.Sprintf("k6 exited %d (see k6.log)", l.exit)}
	}
	e.logf("load done: k6 exited %d", l.exit)
	return l, ctx.Err()
}

// meterCPU samples the stack's CPU into cpu-samples.jsonl until the
// returned stop is called (which waits for the last line).
func (e *Experiment) meterCPU(ctx context.Context) (*cpuMeter, func()) {
	m := &cpuMeter{stack: e.cfg.Stack, every: time.Second, others: func() map[string]int {
		return map[string]int{"k6": int(e.k6Pid.Load()), "harness": os.Getpid()}
	}}
	f, err := os.Create(filepath.Join(e.cfg.Out, "cpu-samples.jsonl"))
	if err != nil {
		e.logf("CPU samples not written: %v", err)
	} else {
		m.out = f
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); m.run(mctx) }()
	return m, func() {
		cancel()
		<-done
		if f != nil {
			f.Close()
		}
	}
}

// audit settles the run's orders, classifies every order from ground truth
// (the ledger, the stores, Temporal's histories, the Orders view, the
// harness's own fault record), checks stock, orphans, intake, the faults'
// own effects and lag, checks the hypothesis again and evaluates the gates:
// ErrGates when one fails, ErrBadInput when the ground truth cannot be read.
func (e *Experiment) audit(ctx context.Context, w *watchers, l loaded) error {
	cfg, r, facts := e.cfg, e.res, w.facts
	saga := cfg.platform() == verify.PlatformSaga
	attempts, err := verify.ReadLedger(filepath.Join(cfg.Out, "ledger.jsonl"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	r.Placed = len(attempts)
	r.Timeline = report.Timeline(attempts)
	if err := facts.Resolve(ctx, attempts); err != nil {
		r.Gaps = append(r.Gaps, err.Error())
	}
	byOrder := map[string]*verify.Facts{}
	lines := map[string]verify.LedgerLine{}
	expectComp := 0
	for _, a := range attempts {
		if a.OrderID != "" {
			byOrder[a.OrderID] = &verify.Facts{}
			lines[a.OrderID] = a.LedgerLine
		}
		if a.Outcome == verify.OutcomeAcked && (a.Expect == verify.ExpectDeclined || a.Expect == verify.ExpectUndeliverable) {
			expectComp++
		}
	}
	ids := make([]string, 0, len(byOrder))
	for id := range byOrder {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	e.setPhase("settling")
	settleStart := time.Now()
	serr := facts.WaitSettled(ctx, ids, cfg.SettleTimeout, e.settle(w), func(n int, why string) {
		e.mu.Lock()
		e.settling, e.settleWhy = n, why
		e.mu.Unlock()
	})
	e.settled = time.Now()
	e.logf("settled in %s: %v", time.Since(settleStart).Round(time.Second), errOr(serr, "no order can still change, no notification under way"))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e.setPhase("collecting")
	// Temporal first: whatever a saga did is then already in the stores
	// when they are read.
	since := e.since()
	var orphanWorkflows []string
	if saga {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		orphanWorkflows, r.Gaps, err = verify.TemporalFacts{Client: e.temporal, Namespace: cfg.Namespace}.Fill(tctx, since, byOrder)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadInput, err)
		}
	}
	if gaps := facts.Fill(ctx, byOrder); len(gaps) > 0 {
		return fmt.Errorf("%w: a store could not be read: %s", ErrBadInput, strings.Join(gaps, "; "))
	}
	var older []string
	for id, f := range byOrder {
		if f.Order != nil && f.Order.CreatedAt.Before(since) {
			older = append(older, id)
		}
	}
	if len(older) > 0 {
		// The API answered this run's keys with orders placed before it:
		// the ledger's keys were used before (a run name reused), and
		// nothing of this run can be told apart from the earlier one.
		sort.Strings(older)
		return fmt.Errorf("%w: %d orders of the ledger were placed before the run (e.g. %s): its idempotency keys (run %s) were used before",
			ErrBadInput, len(older), older[0], cfg.Run)
	}
	// Reading an order takes the user's or the service token.
	hc, err := web.ServiceClient(&http.Client{Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("%w: read the Orders view: %v", ErrBadInput, err)
	}
	views := bench.NewOrdersClient(cfg.OrdersURL, hc).Orders(ctx, ids, 8)
	unread := 0
	for id, f := range byOrder {
		if f.Order == nil {
			continue // the Orders service has no such order: nothing to view
		}
		if v := views[id]; v != nil {
			f.View = &verify.View{Status: v.Status, FailureReason: v.FailureReason}
		} else {
			unread++
		}
	}
	if unread > 0 {
		r.Gaps = append(r.Gaps, fmt.Sprintf("GET /v1/orders/{id}: %d orders could not be read", unread))
	}
	windows := e.windows(r.LoadEnd)
	env := verify.Env{Platform: cfg.platform(), OutageBudget: e.outageBudget(), Faults: windows}
	var verdicts []verify.Verdict
	seen := map[string]bool{}
	for _, a := range attempts {
		if a.OrderID != "" && seen[a.OrderID] {
			continue
		}
		seen[a.OrderID] = true
		f := verify.Facts{}
		if p := byOrder[a.OrderID]; p != nil {
			f = *p
		}
		verdicts = append(verdicts, verify.Classify(a.LedgerLine, f, env))
	}
	r.Counts = verify.Counts(verdicts)
	var comp []time.Duration
	for _, v := range verdicts {
		if v.Compensated {
			comp = append(comp, v.CompensationTime)
		}
		switch v.Class {
		case verify.ClassLost, verify.ClassDuplicated, verify.ClassInconsistent:
			r.Problems = append(r.Problems, v)
		}
	}
	r.CompensationTimes = append([]time.Duration(nil), comp...)
	r.Compensation = stats.Summarise(comp)
	stockErr := l.stockErr
	if stockErr == nil {
		end, err := facts.ReadStock(ctx)
		var others verify.Stock
		if err == nil {
			others, err = facts.OthersDelta(ctx, l.stockAt, ids)
		}
		if err == nil {
			r.Stock = verify.CheckStock(l.stockStart, end, verdicts, lines, others)
		} else {
			stockErr = err
		}
	}
	orphans, err := facts.Orphans(ctx, r.LoadStart.Add(-time.Second), ids, orphanWorkflows)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	r.Orphans = orphans
	e.auditFaults(ctx)

	// Lag, from every source, from the load's start until settled.
	lag := map[string][]verify.LagSample{}
	gaps := map[string][]verify.Gap{}
	for _, src := range e.samplers {
		var sampled []verify.LagSample
		for _, p := range lagsample.PerPoll(src.s.Samples()) {
			if !p.At.Before(r.LoadStart) && !p.At.After(e.settled) {
				sampled = append(sampled, verify.LagSample{At: p.At, Lag: p.Lag, Blind: p.Blind})
			}
		}
		lag[src.name] = sampled
		for _, g := range src.s.Gaps() {
			if g.To.After(r.LoadStart) && g.From.Before(e.settled) {
				gaps[src.name] = append(gaps[src.name], verify.Gap{From: g.From, To: g.To, Reason: g.Reason})
			}
		}
	}
	hist, herr := e.histogramLag(ctx, r.LoadStart, e.settled)
	if herr != nil {
		r.Gaps = append(r.Gaps, "prometheus: "+herr.Error())
	}
	lag[SourceHistogram] = hist
	r.LagSeries = lag

	// The hypothesis again, after.
	e.setPhase("steady state")
	r.SteadyAfter = e.probe(ctx, facts, serr)
	w.stopSampler()

	r.Faults = e.faultRecords()
	ledger := ledgerCheck(attempts, filepath.Join(cfg.Out, "summary.json"))
	r.Ledger = &ledger
	gates, reports := verify.Evaluate(verify.Input{Verdicts: verdicts, Lag: lag, Gaps: gaps, LoadEnd: r.LoadEnd, Faults: windows,
		K6Passed: l.exit == 0, K6Failures: r.K6.Failed, Limits: cfg.Limits, ExpectCompensations: expectComp,
		Orphans: orphans, OrphansGated: !cfg.SharedStack, Ledger: &ledger, Attempts: attempts})
	r.Lag = reports
	gates = append(gates, e.extraGates(r, stockErr)...)
	r.Gates = gates
	r.Passed = verify.Passed(gates)
	if cfg.PromURL != "" {
		// Each verdict, for the Chaos run dashboard's gate panel.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := (RemoteWriter{URL: cfg.PromURL + "/api/v1/write"}).Push(pctx, GateSeries(cfg.Run, gates, time.Now())); err != nil {
			e.logf("gate verdicts not pushed to Prometheus: %v", err)
		}
		cancel()
	}
	e.setPhase("done")
	if !r.Passed {
		return ErrGates
	}
	return nil
}

// outageBudget is the budget the workers run with for the run, as the
// harness set it (or left it: the saga's default).
func (e *Experiment) outageBudget() time.Duration {
	if e.cfg.OutageBudget > 0 {
		return e.cfg.OutageBudget
	}
	return saga.DefaultOutageBudget
}

// settle is what the audit waits for, read from outside the platform:
// Temporal's running workflows, the orders outbox drained, and every
// sampled consumer group caught up.
func (e *Experiment) settle(w *watchers) verify.Settle {
	s := verify.Settle{Platform: e.cfg.platform()}
	if s.Platform != verify.PlatformSaga {
		return s
	}
	since := e.since()
	s.Running = func(ctx context.Context) (map[string]bool, error) {
		out := map[string]bool{}
		query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND StartTime >= '%s'", verify.WorkflowType, since.UTC().Format(time.RFC3339Nano))
		var token []byte
		for {
			resp, err := e.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: e.cfg.Namespace, Query: query, PageSize: 1000, NextPageToken: token})
			if err != nil {
				return nil, fmt.Errorf("temporal visibility (%s): %w", query, err)
			}
			for _, x := range resp.Executions {
				out[strings.TrimPrefix(x.GetExecution().GetWorkflowId(), "order-")] = true
			}
			if token = resp.NextPageToken; len(token) == 0 {
				return out, nil
			}
		}
	}
	s.Busy = func(ctx context.Context) (string, error) {
		var unsent int
		if err := w.db.QueryRow(ctx, `SELECT count(*) FROM orders.outbox WHERE sent_at IS NULL AND dead_at IS NULL`).Scan(&unsent); err != nil {
			return "", fmt.Errorf("orders.outbox: %w", err)
		}
		if unsent > 0 {
			return fmt.Sprintf("%d order events not yet published", unsent), nil
		}
		for _, src := range e.samplers {
			if !src.s.CaughtUp(3 * time.Second) {
				return src.group + " behind on " + src.topic, nil
			}
		}
		return "", nil
	}
	return s
}

// ledgerCheck counts the ledger's placements by outcome beside k6's own
// counters in its summary export.
func ledgerCheck(attempts []verify.Attempt, summary string) verify.LedgerCheck {
	c := verify.LedgerCheck{Ledger: map[string]int{}, K6: map[string]int{}}
	for _, a := range attempts {
		c.Ledger[a.Outcome]++
	}
	b, err := os.ReadFile(summary)
	if err != nil {
		c.Err = "k6's summary: " + err.Error()
		return c
	}
	var s struct {
		Metrics map[string]struct {
			Count *float64 `json:"count"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		c.Err = "k6's summary " + summary + ": " + err.Error()
		return c
	}
	for outcome, metric := range map[string]string{verify.OutcomeAcked: "orders_placed", verify.OutcomeRejected: "orders_rejected", verify.OutcomeUnknown: "orders_unknown"} {
		if m, ok := s.Metrics[metric]; ok && m.Count != nil {
			c.K6[outcome] = int(*m.Count)
		}
	}
	return c
}

// Lag source names.
const (
	SourceSampler  = "sampler: order-orchestrator on orders"
	SourceShipping = "sampler: order-orchestrator on shipping"
	// SourceProjection's lag is how stale GET /v1/orders/{id} is: it has
	// its own limit (Limits.SourceLag, --max-view-lag).
	SourceProjection = "sampler: order-projection on order-status"
	SourceHistogram  = "orchestrator histogram (Prometheus, bucket resolution)"
)

func (e *Experiment) extraGates(r *report.Result, stockErr error) []verify.Gate {
	var gates []verify.Gate
	g := verify.Gate{Name: "ground truth read", Threshold: "every store and Temporal readable", Value: "all read", Pass: len(r.Gaps) == 0}
	if !g.Pass {
		g.Value = fmt.Sprintf("%d gaps", len(r.Gaps))
		g.Detail = strings.Join(r.Gaps, "\n")
	}
	gates = append(gates, g)
	g = verify.Gate{Name: "stock returned", Threshold: "available = start - held by ok orders, per SKU", Value: "every SKU", Pass: stockErr == nil && len(r.Stock) == 0}
	if stockErr != nil {
		g.Value, g.Detail = "unreadable", stockErr.Error()
	} else if len(r.Stock) > 0 {
		g.Value = fmt.Sprintf("%d SKUs off", len(r.Stock))
		var d []string
		for i, m := range r.Stock {
			if i == 10 {
				break
			}
			d = append(d, fmt.Sprintf("%s: want %d, got %d", m.SKU, m.Want, m.Got))
		}
		g.Detail = strings.Join(d, "\n")
	}
	gates = append(gates, g)
	var bad []string
	for _, f := range r.Faults {
		if f.Error != "" {
			bad = append(bad, f.Name+": "+f.Error)
		} else if f.Start.IsZero() {
			bad = append(bad, f.Name+": never injected")
		}
	}
	g = verify.Gate{Name: "faults injected as planned", Threshold: "every fault injected and healed", Value: fmt.Sprintf("%d of %d", len(r.Faults)-len(bad), len(r.Faults)), Pass: len(bad) == 0}
	g.Detail = strings.Join(bad, "\n")
	gates = append(gates, g)
	var failed []string
	for _, p := range r.SteadyAfter {
		if !p.OK {
			failed = append(failed, p.Name+": "+p.Detail)
		}
	}
	gates = append(gates, verify.Gate{Name: "steady state after", Threshold: "every probe holds", Value: fmt.Sprintf("%d of %d hold", len(r.SteadyAfter)-len(failed), len(r.SteadyAfter)),
		Pass: len(failed) == 0, Detail: strings.Join(failed, "\n")})
	return gates
}

func (e *Experiment) faultRecords() []report.FaultRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]report.FaultRecord, 0, len(e.records))
	for _, f := range e.records {
		out = append(out, *f)
	}
	return out
}

// windows are the faults as they happened, for the lag gate.
func (e *Experiment) windows(loadEnd time.Time) []verify.Window {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []verify.Window
	for _, f := range e.records {
		if f.Start.IsZero() {
			continue
		}
		end := f.End
		if end.IsZero() {
			end = loadEnd
		}
		out = append(out, verify.Window{Name: f.Name, Start: f.Start, End: end, Consumer: f.Consumer,
			Target: f.Target, Unreachable: Unreachable(Kind(f.Kind))})
	}
	return out
}

func (e *Experiment) histogramLag(ctx context.Context, from, to time.Time) ([]verify.LagSample, error) {
	p := Prom{Base: e.cfg.PromURL}
	// Wait for the last scrape of the load phase to land.
	time.Sleep(3 * time.Second)
	series, err := p.QueryRange(ctx, LagHistogramQuery(e.cfg.Group, 5*time.Second), from, to, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return LagFromHistogram(series, e.cfg.Limits.MaxLag), nil
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// failedThresholds reads k6's --summary-export: a threshold's value is true
// when it failed.
func failedThresholds(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var s struct {
		Metrics map[string]struct {
			Thresholds map[string]bool `json:"thresholds"`
		} `json:"metrics"`
	}
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	var out []string
	for m, v := range s.Metrics {
		for t, failed := range v.Thresholds {
			if failed {
				out = append(out, m+" "+t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// startK6 launches the load; done receives its exit code.
func (e *Experiment) startK6(ctx context.Context, done chan<- int) (time.Time, error) {
	cfg := e.cfg
	logf, err := os.Create(filepath.Join(cfg.Out, "k6.log"))
	if err != nil {
		return time.Time{}, err
	}
	args := []string{"run", "--no-color", "--summary-export", filepath.Join(cfg.Out, "summary.json"), "--tag", "run=" + cfg.Run}
	if cfg.PromURL != "" {
		args = append(args, "-o", "experimental-prometheus-rw")
	}
	args = append(args, cfg.Script)
	cmd := exec.Command(cfg.K6, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(),
		"BASE_RATE="+fmt.Sprint(cfg.BaseRate),
		"DURATION="+fmt.Sprintf("%ds", int(cfg.Duration.Seconds())),
		"ORDERS_URL="+cfg.OrdersURL,
		// Sampled orders are followed with the service token (a path, never the token).
		"ORDERS_TOKEN_FILE="+config.SecretPath(config.SecretServiceToken),
		"LEDGER="+filepath.Join(cfg.Out, "ledger.jsonl"),
		"SEED="+fmt.Sprint(cfg.Seed),
		"RUN_ID="+cfg.Run,
		"FAULT_WINDOWS="+FaultWindows(cfg.Faults),
		"K6_WEB_DASHBOARD=true",
		"K6_WEB_DASHBOARD_HOST=127.0.0.1",
		"K6_WEB_DASHBOARD_PORT=-1",
		"K6_WEB_DASHBOARD_PERIOD=1s",
		"K6_WEB_DASHBOARD_EXPORT="+filepath.Join(cfg.Out, "k6-report.html"),
		"K6_PROMETHEUS_RW_SERVER_URL="+cfg.PromURL+"/api/v1/write",
		"K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true",
		"K6_PROMETHEUS_RW_PUSH_INTERVAL=2s",
	)
	cmd.Env = append(cmd.Env, cfg.K6Env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return time.Time{}, fmt.Errorf("start k6 (%s): %w", cfg.K6, err)
	}
	start := time.Now()
	e.k6Pid.Store(int64(cmd.Process.Pid))
	e.logf("k6 started (pid %d): %s %s; log %s", cmd.Process.Pid, cfg.K6, strings.Join(args, " "), logf.Name())
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// Ctrl-C: let k6 stop cleanly and write its summary.
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
			}
		case <-exited:
		}
	}()
	go func() {
		err := cmd.Wait()
		close(exited)
		logf.Close()
		code := 0
		if err != nil {
			code = -1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
		}
		done <- code
	}()
	return start, nil
}

// FaultWindows is the k6 FAULT_WINDOWS of a plan ("start-end,..." seconds
// from the start), widened by two seconds each side for the skew between
// our clock and k6's scenario start. A fault that stops a process ends when
// the process is ready again, and the Payments kill may wait up to 15 s for
// charges in flight: those windows get 20 s more.
func FaultWindows(plan []Planned) string {
	var parts []string
	for _, p := range plan {
		from := p.At.Seconds() - 2
		if from < 0 {
			from = 0
		}
		end := p.End().Seconds() + 2
		switch p.Kind {
		case KindKill, KindRestart, KindRelayCrash:
			end += 20
		}
		parts = append(parts, fmt.Sprintf("%.0f-%.0f", from, end))
	}
	return strings.Join(parts, ",")
}

// loadavg is the host's /proc/loadavg (1, 5 and 15 minutes), "" where there is none.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

func errOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func probesOK(ps []report.Probe) bool {
	for _, p := range ps {
		if !p.OK {
			return false
		}
	}
	return true
}

func (e *Experiment) setPhase(p string) {
	e.mu.Lock()
	e.phase = p
	e.mu.Unlock()
}
