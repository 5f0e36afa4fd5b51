package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-dev/stampede/harness/bench"
	"github.com/stampede-dev/stampede/platform/config"
)

// sagaRun is one rate of `stampede bench saga` with the stack-side figures
// taken around it.
type sagaRun struct {
	bench.SagaResult
	At          time.Time `json:"at"`
	Persistence string    `json:"persistence"`
	LoadStart   string    `json:"loadStart"` // /proc/loadavg 1/5/15 min when the run began
	LoadEnd     string    `json:"loadEnd"`
	// WFTaskS2SP99 is the workers' workflow-task schedule-to-start p99
	// during the run (upper bucket bound, seconds; -1 = above the last bucket).
	WFTaskS2SP99 float64 `json:"wfTaskScheduleToStartP99"`
	WFTasks      float64 `json:"wfTasks"`
	// TemporalCPU is the Temporal server's CPU use over the run, in cores.
	TemporalCPU float64 `json:"temporalCpuCores"`
	Target      bool    `json:"meetsTarget"`
}

const wfTaskS2S = "temporal_workflow_task_schedule_to_start_latency_seconds"

func benchSaga(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede bench saga", `Place orders that should all complete (token tok_visa, SKU-00001..SKU-01000 in stock,
users u-1..u-10000, a deliverable address, a unique Idempotency-Key each) at a constant
open-loop rate through the running stack, wait (at most --settle) until every order is
in_transit or failed, and report: placed, completed, failed, not settled; confirmation
latency (pending -> creating_shipment, i.e. reserved and charged) and end to end
(pending -> in_transit) from the server's status-history timestamps; the achieved rate.

With --rates it steps through several rates (a full run each, --pause between) and
reports the highest rate at which every order completed with confirmation p99 within
--confirm-p99. Each run appends a row to OUT/saga.md (and OUT/saga.jsonl).
Exits non-zero when a single run did not complete every order, or no rate of a sweep
met the target.`)
	var (
		rate                   int
		rates, out, url, home  string
		workerMetrics, persist string
		duration, settle       time.Duration
		pause, target          time.Duration
		keepGoing              bool
	)
	fs.IntVar(&rate, "rate", "", 25, "orders per second (one run)")
	fs.StringVar(&rates, "rates", "", "", "comma-separated rates to step through, e.g. 15,20,25,30,40 (overrides --rate)")
	fs.DurationVar(&duration, "duration", "", 2*time.Minute, "how long to place orders at each rate")
	fs.DurationVar(&settle, "settle", "", 60*time.Second, "how long after the last order to wait for every saga to settle")
	fs.DurationVar(&pause, "pause", "", 20*time.Second, "pause between the runs of a sweep")
	fs.DurationVar(&target, "confirm-p99", "", 300*time.Millisecond, "confirmation p99 target of a sweep")
	fs.BoolVar(&keepGoing, "keep-going", "", false, "in a sweep, go on to higher rates after one at which not every order completed")
	fs.StringVar(&out, "out", "", "results/bench", "directory for saga.md and saga.jsonl")
	ordersURLFlag(fs, &url)
	fs.StringVar(&home, "home", "STAMPEDE_HOME", ".stampede", "stack state directory (run/temporal.pid is read for Temporal's CPU and settings)")
	fs.StringVar(&workerMetrics, "worker-metrics", "", "http://127.0.0.1:8096/metrics,http://127.0.0.1:8097/metrics",
		"comma-separated worker /metrics URLs for workflow-task schedule-to-start; empty to skip")
	fs.StringVar(&persist, "persistence", "", "", "label of Temporal's store for the table; empty: read from the running server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	steps := []int{rate}
	if rates != "" {
		steps = nil
		for _, f := range strings.Split(rates, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 2000 {
				return fmt.Errorf("--rates %q: %q is not a rate in 1..2000", rates, f)
			}
			steps = append(steps, n)
		}
	} else if rate < 1 || rate > 2000 {
		return fmt.Errorf("--rate %d: want 1..2000", rate)
	}
	if duration < time.Second {
		return fmt.Errorf("--duration %s: want at least 1s", duration)
	}
	if settle < 0 {
		return fmt.Errorf("--settle %s: must not be negative", settle)
	}
	metricURLs := splitComma(workerMetrics)
	tpid := readPid(filepath.Join(home, "run", "temporal.pid"))
	if persist == "" {
		persist = temporalPersistence(tpid)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	var runs []sagaRun
	for i, r := range steps {
		if i > 0 {
			fmt.Printf("pause %s\n", pause)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		fmt.Printf("bench saga: %d orders/s for %s (settle %s) against %s, Temporal %s\n", r, duration, settle, url, persist)
		run, err := sagaOnce(ctx, r, duration, settle, url, metricURLs, tpid)
		if err != nil {
			return err
		}
		run.Persistence = persist
		run.Target = run.AllCompleted() && run.Confirm.N > 0 && run.Confirm.P99 <= target
		runs = append(runs, run)
		if err := appendSagaRow(out, run); err != nil {
			return err
		}
		fmt.Println(sagaHeader + sagaRow(run))
		if len(steps) > 1 && !run.AllCompleted() && !keepGoing {
			fmt.Printf("not every order completed at %d/s: not trying higher rates (--keep-going to)\n", r)
			break
		}
	}
	if len(steps) == 1 {
		if !runs[0].AllCompleted() {
			return fmt.Errorf("not every order completed: %d placed, %d completed, %d failed, %d not settled, %d rejected",
				runs[0].Placed, runs[0].Completed, runs[0].Failed, runs[0].NotSettled, runs[0].Rejected)
		}
		return nil
	}
	best, done := -1, -1
	for i, r := range runs {
		if r.Target && (best < 0 || r.Rate > runs[best].Rate) {
			best = i
		}
		if r.AllCompleted() && (done < 0 || r.Rate > runs[done].Rate) {
			done = i
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nSweep `stampede bench saga --rates %s --duration %s --settle %s` (%s, Temporal %s):\n\n%s",
		rates, duration, settle, time.Now().UTC().Format(time.RFC3339), persist, sagaHeader)
	for _, r := range runs {
		b.WriteString(sagaRow(r))
	}
	if done >= 0 {
		fmt.Fprintf(&b, "\nHighest rate with every order completed: %d orders/s (confirmation p50 %s, p99 %s).\n",
			runs[done].Rate, msf(runs[done].Confirm.P50), msf(runs[done].Confirm.P99))
	}
	if best < 0 {
		fmt.Fprintf(&b, "\nNo rate had every order complete with confirmation p99 <= %s.\n", target)
	} else {
		fmt.Fprintf(&b, "\nHighest rate with every order completed and confirmation p99 <= %s: **%d orders/s** (confirmation p50 %s, p99 %s).\n",
			target, runs[best].Rate, msf(runs[best].Confirm.P50), msf(runs[best].Confirm.P99))
	}
	fmt.Print(b.String())
	if err := appendFile(filepath.Join(out, "saga.md"), b.String()); err != nil {
		return err
	}
	if best < 0 {
		return errors.New("no rate met the target")
	}
	return nil
}

func sagaOnce(ctx context.Context, rate int, duration, settle time.Duration, url string, metricURLs []string, tpid int) (sagaRun, error) {
	run := sagaRun{At: time.Now().UTC(), LoadStart: loadAvg()}
	hc := &http.Client{Timeout: 5 * time.Second}
	scrape := func() bench.Histogram {
		sum := bench.Histogram{}
		for _, u := range metricURLs {
			h, err := bench.ScrapeHistogram(ctx, hc, u, wfTaskS2S)
			if err != nil {
				fmt.Fprintf(os.Stderr, "scrape %s: %v\n", u, err)
				continue
			}
			for le, v := range h {
				sum[le] += v
			}
		}
		return sum
	}
	h0 := scrape()
	cpu0, cpuErr := bench.ProcCPU(tpid)
	t0 := time.Now()
	res, err := bench.Saga(ctx, bench.SagaOptions{OrdersURL: url, Rate: rate, Duration: duration, Settle: settle, Progress: os.Stdout})
	if err != nil {
		return run, err
	}
	run.SagaResult = res
	d := scrape().Sub(h0)
	run.WFTasks, run.WFTaskS2SP99 = d.Count(), d.Quantile(.99)
	if cpu1, err := bench.ProcCPU(tpid); err == nil && cpuErr == nil {
		run.TemporalCPU = float64(cpu1-cpu0) / float64(time.Since(t0))
	}
	run.LoadEnd = loadAvg()
	return run, nil
}

const sagaHeader = `| date (UTC) | rate/s | for | Temporal store | load 1/5/15 start -> end | placed | completed | failed | not settled | late sends | achieved/s | confirm p50 | p90 | p99 | max | e2e p50 | e2e p99 | start p50/p99 | steps p50/p99 | settled after | WF task sched-to-start p99 | Temporal CPU | every order completed |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
`

func sagaRow(r sagaRun) string {
	s2s := "n/a"
	switch {
	case r.WFTasks > 0 && r.WFTaskS2SP99 < 0:
		s2s = "> 10 s"
	case r.WFTasks > 0:
		s2s = fmt.Sprintf("<= %g s", r.WFTaskS2SP99)
	}
	ok := "no"
	if r.AllCompleted() {
		ok = "yes"
	}
	if r.Rejected > 0 {
		ok += fmt.Sprintf(" (%d rejected)", r.Rejected)
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s -> %s | %d | %d | %d | %d | %d (max %s) | %.1f | %s | %s | %s | %s | %s | %s | %s/%s | %s/%s | %s | %s | %.2f cores | %s |\n",
		r.At.Format("2006-01-02 15:04"), r.Rate, r.Duration, r.Persistence, r.LoadStart, r.LoadEnd,
		r.Placed, r.Completed, r.Failed, r.NotSettled, r.LateSends, msf(r.MaxSendLag), r.AchievedRate,
		msf(r.Confirm.P50), msf(r.Confirm.P90), msf(r.Confirm.P99), msf(r.Confirm.Max),
		msf(r.EndToEnd.P50), msf(r.EndToEnd.P99), msf(r.Start.P50), msf(r.Start.P99), msf(r.Steps.P50), msf(r.Steps.P99), r.SettledAfter.Round(100*time.Millisecond), s2s, r.TemporalCPU, ok)
}

// appendSagaRow adds a run to saga.md (with the table header when the file
// is new) and to saga.jsonl.
func appendSagaRow(dir string, r sagaRun) error {
	md := filepath.Join(dir, "saga.md")
	var s string
	if _, err := os.Stat(md); errors.Is(err, os.ErrNotExist) {
		s = "# Full-saga benchmark (`stampede bench saga`)\n\nConfirmation = pending -> creating_shipment (reserved and charged), split into start = pending -> processing (relay, Kafka, orchestrator, workflow start) and steps = processing -> creating_shipment (reserve + charge); e2e = pending -> in_transit; all from the Orders API's status-history timestamps. Late sends = sent more than 20 ms behind the open-loop schedule (client-side CPU starvation). WF task sched-to-start = the workers' workflow-task schedule-to-start p99 (histogram bucket bound; n/a when a worker restarted during the run). One row per run.\n\n" + sagaHeader
	}
	if err := appendFile(md, s+sagaRow(r)); err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	return appendFile(filepath.Join(dir, "saga.jsonl"), string(b)+"\n")
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func msf(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], "/")
}

// readPid reads the first field of a stack pid file; 0 when unreadable.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// temporalPersistence describes the running embedded Temporal's store from
// its command line and environment (flag beats env beats default, as in
// stampede-temporal), e.g. "sqlite (1 shard)".
func temporalPersistence(pid int) string {
	if pid == 0 {
		return "unknown"
	}
	get := func(flag, env, def string) string {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			a := strings.Split(string(b), "\x00")
			for i, x := range a {
				if x == "--"+flag && i+1 < len(a) {
					return a[i+1]
				}
				if v, ok := strings.CutPrefix(x, "--"+flag+"="); ok {
					return v
				}
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil {
			for _, kv := range strings.Split(string(b), "\x00") {
				if v, ok := strings.CutPrefix(kv, env+"="); ok && v != "" {
					return v
				}
			}
		}
		return def
	}
	p := get("persistence", "STAMPEDE_TEMPORAL_PERSISTENCE", "sqlite")
	def := "1"
	if p == "postgres" {
		def = "4"
	}
	shards := get("history-shards", "STAMPEDE_TEMPORAL_HISTORY_SHARDS", def)
	if shards == "0" {
		shards = def
	}
	return fmt.Sprintf("%s (%s shards)", p, shards)
}
