// Command loadcheck measures what a running stampede-temporal sustains: it
// starts saga-shaped workflows (activities, then a timer, then a last
// activity) at a steady rate, runs the worker for them in-process, and
// reports completed sagas/s and start-to-complete latency percentiles.
//
// It also checks the things the launcher relies on: the frontend's health
// check, that the OrderId search attribute finds a workflow, and (with the
// start and await modes around a server restart) that workflows survive it.
//
// It only talks to the address it is given; it must never be pointed at a
// server that is not on this machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadcheck: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	mode        string
	address     string
	namespace   string
	taskQueue   string
	idPrefix    string
	rate        float64
	duration    time.Duration
	drain       time.Duration
	count       int
	activities  int
	timer       time.Duration
	maxP99      time.Duration
	concurrency int
	wfPollers   int
	local       bool
	serverPID   int
	actPollers  int
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadcheck", flag.ContinueOnError)
	fs.StringVar(&c.mode, "mode", "load", "load: steady-rate run and report; health: check grpc.health.v1 once;\n"+
		"start: start -count sagas and run them up to their timer, then exit; await: run the worker until those -count sagas complete")
	fs.StringVar(&c.address, "address", "127.0.0.1:7233", "frontend address (loopback only)")
	fs.StringVar(&c.namespace, "namespace", "default", "namespace")
	fs.StringVar(&c.taskQueue, "task-queue", "", "task queue; default loadcheck-<id prefix>")
	fs.StringVar(&c.idPrefix, "id-prefix", "", "workflow ID prefix; default lc-<unix time> (start and await need the same one)")
	fs.Float64Var(&c.rate, "rate", 20, "sagas started per second (load)")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "how long to start sagas (load)")
	fs.DurationVar(&c.drain, "drain", 90*time.Second, "how long to wait for the last sagas after starting stops (load, start, await)")
	fs.IntVar(&c.count, "count", 20, "sagas to start (start) or wait for (await)")
	fs.IntVar(&c.activities, "activities", 5, "activities per saga; the timer runs before the last one")
	fs.DurationVar(&c.timer, "timer", time.Second, "the saga's timer")
	fs.DurationVar(&c.maxP99, "max-p99", 0, "a run keeps up if every saga completed and p99 <= this; default timer + 2s")
	fs.IntVar(&c.concurrency, "worker-slots", 200, "worker's concurrent workflow tasks and activities")
	fs.IntVar(&c.wfPollers, "workflow-pollers", 16, "worker's concurrent workflow task polls (sticky and normal queue)")
	fs.BoolVar(&c.local, "local-activities", false, "run the steps as local activities (no activity tasks through the server)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "if set, also report that process's CPU use over the run (Linux /proc)")
	fs.IntVar(&c.actPollers, "activity-pollers", 8, "worker's concurrent activity task polls")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if c.idPrefix == "" {
		c.idPrefix = fmt.Sprintf("lc-%d", time.Now().Unix())
	}
	if c.taskQueue == "" {
		c.taskQueue = "loadcheck-" + c.idPrefix
	}
	if c.maxP99 == 0 {
		c.maxP99 = c.timer + 2*time.Second
	}
	if c.rate <= 0 || c.activities < 1 || c.count < 1 {
		return config{}, errors.New("-rate, -activities and -count must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.mode == "health" {
		return checkHealth(ctx, c.address)
	}
	quiet := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	cl, err := client.Dial(client.Options{HostPort: c.address, Namespace: c.namespace, Logger: quiet})
	if err != nil {
		return fmt.Errorf("dial %s: %w", c.address, err)
	}
	defer cl.Close()

	acts := &activities{done: map[string]time.Time{}}
	w := worker.New(cl, c.taskQueue, worker.Options{
		MaxConcurrentWorkflowTaskExecutionSize: c.concurrency,
		MaxConcurrentActivityExecutionSize:     c.concurrency,
		MaxConcurrentWorkflowTaskPollers:       c.wfPollers,
		MaxConcurrentActivityTaskPollers:       c.actPollers,
	})
	w.RegisterWorkflowWithOptions(Saga, workflow.RegisterOptions{Name: "LoadcheckSaga"})
	w.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	switch c.mode {
	case "load":
		return runLoad(ctx, cl, acts, c)
	case "start":
		return runStart(ctx, cl, acts, c)
	case "await":
		return runAwait(ctx, cl, c)
	}
	return fmt.Errorf("-mode %q: want load, health, start or await", c.mode)
}

// checkHealth asks the frontend's grpc.health.v1 service, as a launcher would.
func checkHealth(ctx context.Context, address string) error {
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, svc := range []string{"", "temporal.api.workflowservice.v1.WorkflowService"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return fmt.Errorf("health check %q: %w", svc, err)
		}
		fmt.Printf("health %q: %s\n", svc, resp.GetStatus())
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health check %q: %s", svc, resp.GetStatus())
		}
	}
	return nil
}

// SagaInput says how many steps to run and how long the timer is.
type SagaInput struct {
	OrderID    string
	Activities int
	Timer      time.Duration
	Local      bool
}

// Saga is shaped like the order saga: steps, a timer, a last step.
func Saga(ctx workflow.Context, in SagaInput) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond},
	})
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond},
	})
	exec := workflow.ExecuteActivity
	if in.Local {
		exec = workflow.ExecuteLocalActivity
	}
	var a *activities
	done := 0
	for i := 0; i < in.Activities-1; i++ {
		if err := exec(ctx, a.Step, in.OrderID, i).Get(ctx, nil); err != nil {
			return done, err
		}
		done++
	}
	if err := workflow.Sleep(ctx, in.Timer); err != nil {
		return done, err
	}
	if err := exec(ctx, a.Finish, in.OrderID).Get(ctx, nil); err != nil {
		return done, err
	}
	return done + 1, nil
}

// activities do no work: the figures are the server's, not a service's.
type activities struct {
	mu   sync.Mutex
	done map[string]time.Time
	n    atomic.Int64
	ats  atomic.Int64 // steps run before the timer
}

// Step is any forward step of the saga.
func (a *activities) Step(ctx context.Context, orderID string, step int) error {
	a.ats.Add(1)
	return nil
}

// Finish is the last step; it notes when the saga got there.
func (a *activities) Finish(ctx context.Context, orderID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.done[activity.GetInfo(ctx).WorkflowExecution.ID]; !ok {
		a.n.Add(1)
	}
	a.done[activity.GetInfo(ctx).WorkflowExecution.ID] = time.Now()
	return nil
}

var (
	orderIDKey = temporal.NewSearchAttributeKeyKeyword("OrderId")
	userIDKey  = temporal.NewSearchAttributeKeyKeyword("UserId")
)

func startSaga(ctx context.Context, cl client.Client, c config, i int) error {
	id := fmt.Sprintf("%s-%06d", c.idPrefix, i)
	orderID := "order-" + id
	_, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: c.taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			orderIDKey.ValueSet(orderID),
			userIDKey.ValueSet(fmt.Sprintf("user-%d", i%100)),
		),
	}, "LoadcheckSaga", SagaInput{OrderID: orderID, Activities: c.activities, Timer: c.timer, Local: c.local})
	return err
}

// runLoad starts sagas at c.rate for c.duration, waits for them, and reports.
func runLoad(ctx context.Context, cl client.Client, acts *activities, c config) error {
	total := int(math.Round(c.rate * c.duration.Seconds()))
	interval := time.Duration(float64(time.Second) / c.rate)
	scheduled := make([]time.Time, total)
	startErrs := make([]error, total)
	var startLat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup

	kind := "activities"
	if c.local {
		kind = "local activities"
	}
	fmt.Printf("loadcheck: %d sagas at %.1f/s for %s on %s (%d %s + %s timer), task queue %s\n",
		total, c.rate, c.duration, c.address, c.activities, kind, c.timer, c.taskQueue)
	cpu0 := sampleCPU(c.serverPID)
	begin := time.Now()
	for i := 0; i < total; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		scheduled[i] = at
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			t0 := time.Now()
			startErrs[i] = startSaga(sctx, cl, c, i)
			mu.Lock()
			startLat = append(startLat, time.Since(t0))
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	startedBy := time.Since(begin)

	failedStarts := 0
	for _, err := range startErrs {
		if err != nil {
			if failedStarts == 0 {
				fmt.Printf("first start error: %v\n", err)
			}
			failedStarts++
		}
	}
	want := int64(total - failedStarts)
	deadline := time.Now().Add(c.drain)
	for acts.n.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}

	// Latency is from the moment a saga was due to start (so a slow start
	// call counts against the server) to the server's close time.
	cpu1 := sampleCPU(c.serverPID)
	closes, err := closeTimes(ctx, cl, c, int(want))
	if err != nil {
		return err
	}
	var lat []time.Duration
	var last time.Time
	for i, at := range scheduled {
		id := fmt.Sprintf("%s-%06d", c.idPrefix, i)
		ct, ok := closes[id]
		if !ok {
			continue
		}
		lat = append(lat, ct.Sub(at))
		if ct.After(last) {
			last = ct
		}
	}
	completed := len(lat)
	slices.Sort(lat)
	slices.Sort(startLat)
	span := last.Sub(begin)
	fmt.Printf("offered      %.1f sagas/s (%d started in %s, %d start errors)\n", float64(total)/c.duration.Seconds(), total-failedStarts, startedBy.Round(time.Millisecond), failedStarts)
	fmt.Printf("completed    %d/%d, %.1f sagas/s (first start to last close %s)\n", completed, total, float64(completed)/span.Seconds(), span.Round(time.Millisecond))
	fmt.Printf("start call   p50 %s  p99 %s  max %s\n", pct(startLat, 50), pct(startLat, 99), pct(startLat, 100))
	fmt.Printf("start->close p50 %s  p90 %s  p99 %s  max %s\n", pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))

	if c.serverPID > 0 {
		fmt.Printf("cpu          server %.2f cores, machine %.0f%% busy of %d cores (over %s)\n",
			cpu1.procCores(cpu0), cpu1.machineBusy(cpu0), runtime.NumCPU(), cpu1.at.Sub(cpu0.at).Round(time.Second))
	}
	if err := findByOrderID(ctx, cl, c); err != nil {
		return err
	}
	keepsUp := completed == total && pct(lat, 99) <= c.maxP99
	fmt.Printf("keeps up     %v (all completed and p99 <= %s)\n", keepsUp, c.maxP99)
	if !keepsUp {
		return errors.New("did not keep up at this rate")
	}
	return nil
}

// closeTimes lists the closed workflows of this run from visibility, waiting
// until it has want of them or the drain time is over.
func closeTimes(ctx context.Context, cl client.Client, c config, want int) (map[string]time.Time, error) {
	query := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Completed'", c.taskQueue)
	deadline := time.Now().Add(c.drain)
	for {
		out := map[string]time.Time{}
		var token []byte
		for {
			resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: c.namespace, Query: query, PageSize: 1000, NextPageToken: token,
			})
			if err != nil {
				return nil, fmt.Errorf("list workflows: %w", err)
			}
			for _, e := range resp.GetExecutions() {
				out[e.GetExecution().GetWorkflowId()] = e.GetCloseTime().AsTime()
			}
			token = resp.GetNextPageToken()
			if len(token) == 0 {
				break
			}
		}
		if len(out) >= want || time.Now().After(deadline) || ctx.Err() != nil {
			return out, nil
		}
		time.Sleep(time.Second)
	}
}

// findByOrderID checks that the OrderId search attribute finds exactly the
// saga that carries it, the way the Web UI's search does.
func findByOrderID(ctx context.Context, cl client.Client, c config) error {
	id := fmt.Sprintf("%s-%06d", c.idPrefix, 0)
	resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: c.namespace,
		Query:     fmt.Sprintf("OrderId = 'order-%s'", id),
	})
	if err != nil {
		return fmt.Errorf("find by OrderId: %w", err)
	}
	got := resp.GetExecutions()
	if len(got) != 1 || got[0].GetExecution().GetWorkflowId() != id {
		return fmt.Errorf("find by OrderId: got %d executions, want exactly %s", len(got), id)
	}
	fmt.Printf("search       OrderId = 'order-%s' finds %s\n", id, id)
	return nil
}

// runStart starts c.count sagas and returns once each has run every step
// before its timer, so a restart hits them mid-flight with a timer pending.
func runStart(ctx context.Context, cl client.Client, acts *activities, c config) error {
	for i := 0; i < c.count; i++ {
		if err := startSaga(ctx, cl, c, i); err != nil {
			return fmt.Errorf("start saga %d: %w", i, err)
		}
	}
	want := int64(c.count * (c.activities - 1))
	deadline := time.Now().Add(c.drain)
	for acts.ats.Load() < want {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d steps ran before the timer", acts.ats.Load(), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	open := 0
	for i := 0; i < c.count; i++ {
		d, err := cl.DescribeWorkflowExecution(ctx, fmt.Sprintf("%s-%06d", c.idPrefix, i), "")
		if err != nil {
			return fmt.Errorf("describe saga %d: %w", i, err)
		}
		if d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			open++
		}
	}
	fmt.Printf("started %d sagas with prefix %s on task queue %s; %d running, waiting on their %s timer\n",
		c.count, c.idPrefix, c.taskQueue, open, c.timer)
	if open != c.count {
		return fmt.Errorf("%d of %d sagas are running; make -timer longer than the restart", open, c.count)
	}
	return nil
}

// runAwait runs the worker until every saga of the prefix has completed all
// its steps, and fails if one did not.
func runAwait(ctx context.Context, cl client.Client, c config) error {
	ctx, cancel := context.WithTimeout(ctx, c.drain)
	defer cancel()
	for i := 0; i < c.count; i++ {
		id := fmt.Sprintf("%s-%06d", c.idPrefix, i)
		var steps int
		if err := cl.GetWorkflow(ctx, id, "").Get(ctx, &steps); err != nil {
			return fmt.Errorf("saga %s: %w", id, err)
		}
		if steps != c.activities {
			return fmt.Errorf("saga %s ran %d steps, want %d", id, steps, c.activities)
		}
	}
	fmt.Printf("all %d sagas with prefix %s completed with %d steps each\n", c.count, c.idPrefix, c.activities)
	return nil
}

// pct is the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i].Round(time.Millisecond)
}

// cpuSample is a reading of /proc: one process's CPU time and the machine's.
type cpuSample struct {
	at         time.Time
	procTicks  float64
	busyTicks  float64
	totalTicks float64
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now()}
	if pid <= 0 {
		return s
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the ")" that ends the command name; utime and stime
		// are fields 14 and 15 of the whole line.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b)[i+1:])
			if len(f) > 12 {
				u, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				s.procTicks = u + st
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			if i < 8 { // user nice system idle iowait irq softirq steal
				s.totalTicks += v
				if i != 3 && i != 4 {
					s.busyTicks += v
				}
			}
		}
	}
	return s
}

func (s cpuSample) procCores(from cpuSample) float64 {
	return (s.procTicks - from.procTicks) / clockTicks / s.at.Sub(from.at).Seconds()
}

func (s cpuSample) machineBusy(from cpuSample) float64 {
	if s.totalTicks == from.totalTicks {
		return 0
	}
	return 100 * (s.busyTicks - from.busyTicks) / (s.totalTicks - from.totalTicks)
}
