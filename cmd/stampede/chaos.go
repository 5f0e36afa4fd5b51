package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stampede-dev/stampede/harness/chaos"
	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/verify"
	"github.com/stampede-dev/stampede/platform/config"
)

// chaosExit is the exit code of a chaos run: 1 when a gate failed, 2 when
// the run could not be carried out (steady state, missing component, error).
type chaosExit struct {
	err  error
	code int
}

func (e chaosExit) Error() string { return e.err.Error() }
func (e chaosExit) ExitCode() int { return e.code }
func (e chaosExit) Unwrap() error { return e.err }

func chaosHelp() string {
	var b strings.Builder
	b.WriteString(`Run a chaos experiment against the running stack (start it with stampede up):

  1. steady-state hypothesis: every component healthy, the payments proxy clean,
     consumer lag of group order-orchestrator under --max-lag, no saga stuck;
  2. method: bin/k6 runs scenarios/black-friday.js (warm-up, ramp to 5x BASE_RATE,
     hold, ramp down) while the fault schedule breaks things during the 5x hold;
  3. after the load: wait (--settle-timeout) until no saga of the run is before its
     shipment decision, audit every order from each service's own store and
     Temporal, evaluate the gates, check the hypothesis again;
  4. rollbacks, always (also on Ctrl-C and on failure): every toxiproxy proxy
     healed, every component the run stopped started, every component restarted
     with run-only settings restarted without them.

Writes results/<run>/: report.html, report.json, ledger.jsonl, k6-report.html,
summary.json, k6.log, lag-samples.jsonl. Exit code 0 only if every gate holds;
1 when a gate fails (each failing gate is printed with the orders behind it);
2 when the experiment could not run.

Faults (times are offsets from the start of the load with the default --duration
and --seed 1; --seed moves each start by up to a third of the gap between faults):
`)
	for _, p := range []string{chaos.ProfileShort, chaos.ProfileFull} {
		b.WriteString(chaos.Describe(p, chaos.DefaultDuration(p), 1))
	}
	fmt.Fprintf(&b, `
Gates (all must hold):
  lost orders = 0; duplicated orders = 0; inconsistent orders = 0 (every failed
  order compensated: refunded, released, cancelled, notified);
  compensation time p100 < --max-compensation (%s): failure decision -> last
  compensation completed, from the saga's own account; p50/p99/max reported;
  consumer lag max < --max-lag (%s) during the load, from two sources (the lag
  sampler: kadm committed offsets at 10 Hz turned into time; the orchestrators'
  stampede_kafka_consumer_lag_seconds histogram in Prometheus, at bucket
  resolution); windows of consumer faults are excluded until lag recovers and
  reported apart with their recovery time; consumer recovery: after each
  consumer fault ends, lag is back under --max-lag (and stays there for 3 s)
  within --max-recovery (%[5]s), and a fault after which it never comes back
  fails the run;
  the k6 thresholds (dropped_iterations == 0 included);
  ground truth read (every store readable); stock returned (available = start
  minus what ok orders hold, per SKU); faults injected as planned (the Payments
  kill needs charges in flight); steady state after.

For the run, Payments is restarted with %[4]s=--charge-latency (when the
plan kills it) and, in the full profile, the workers with %[3]s=--outage-budget;
the rollback restarts them with their own settings.`,
		verify.DefaultLimits.MaxCompensation, verify.DefaultLimits.MaxLag, chaos.EnvOutageBudget, chaos.EnvChargeLatency, verify.DefaultLimits.MaxRecovery)
	return b.String()
}

// defaultChaosBaseRate is the k6 BASE_RATE of a chaos run. Measured on one
// 2-core machine running the whole stack (short profile, seed 1): base 2 lag
// max 20-73 ms over 7 runs (median 31), base 3 57 ms, base 4 438 ms (the CPU
// is saturated at a 20/s peak: bench cost puts a saga at ~85 ms of CPU). 2
// leaves the 100 ms gate a margin, so a busy CI host does not flip the verdict.
const defaultChaosBaseRate = 2

func runChaos(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede chaos", chaosHelp())
	var sf stackFlags
	sf.register(fs)
	var (
		profile, out, only, skip, durations, k6, script string
		duration, maxComp, maxLag, chargeLat, budget    time.Duration
		maxRecovery                                     time.Duration
		settle                                          time.Duration
		baseRate, noise                                 float64
		seed                                            int
		ignoreSteady                                    bool
	)
	fs.StringVar(&profile, "profile", "STAMPEDE_CHAOS_PROFILE", chaos.ProfileShort, "fault profile: short (CI, about 10 minutes) or full")
	fs.DurationVar(&duration, "duration", "STAMPEDE_CHAOS_DURATION", 0, "k6 DURATION of black-friday.js (0: the profile's, 3m30s short, 10m full)")
	fs.Float64Var(&baseRate, "base-rate", "STAMPEDE_CHAOS_BASE_RATE", defaultChaosBaseRate, "orders/s before the 5x peak (k6 BASE_RATE); 2 (peak 10/s) keeps consumer lag at 20-73 ms (median 31) against the 100 ms gate through the faults on one 2-core machine running the whole stack (README: Chaos)")
	fs.IntVar(&seed, "seed", "STAMPEDE_CHAOS_SEED", 1, "seed of the fault schedule's jitter and of the order mix (k6 SEED); recorded in the report")
	fs.DurationVar(&maxComp, "max-compensation", "STAMPEDE_CHAOS_MAX_COMPENSATION", verify.DefaultLimits.MaxCompensation, "gate: every compensation completes within this (p100)")
	fs.DurationVar(&maxLag, "max-lag", "STAMPEDE_CHAOS_MAX_LAG", verify.DefaultLimits.MaxLag, "gate: consumer lag of order-orchestrator, max during the load outside consumer faults")
	fs.DurationVar(&maxRecovery, "max-recovery", "STAMPEDE_CHAOS_MAX_RECOVERY", verify.DefaultLimits.MaxRecovery, "gate: after each consumer fault ends, lag is back under --max-lag (and stays there for 3 s) within this")
	fs.StringVar(&out, "out", "STAMPEDE_CHAOS_OUT", "", "run directory (default results/<UTC time>-chaos-<profile>)")
	fs.StringVar(&only, "faults", "", "", "run only these faults of the profile (comma-separated names)")
	fs.StringVar(&skip, "skip", "", "", "leave out these faults (comma-separated names)")
	fs.StringVar(&durations, "fault-duration", "", "", "override fault durations: name=15s,name=5s")
	fs.DurationVar(&chargeLat, "charge-latency", "STAMPEDE_CHAOS_CHARGE_LATENCY", 200*time.Millisecond, "restart Payments with this charge latency for the run, so the kill lands on charges in flight (0: leave Payments alone)")
	fs.DurationVar(&budget, "outage-budget", "STAMPEDE_CHAOS_OUTAGE_BUDGET", chaos.OutageBudget, "full profile: the workers' outage budget for the run (the outage fault lasts longer)")
	fs.DurationVar(&settle, "settle-timeout", "STAMPEDE_CHAOS_SETTLE_TIMEOUT", 3*time.Minute, "longest wait after the load for every saga of the run to pass its shipment decision")
	fs.StringVar(&k6, "k6", "STAMPEDE_K6", "", "the k6 binary with xk6-orders (default: k6 next to stampede, from make k6)")
	fs.StringVar(&script, "script", "", "scenarios/black-friday.js", "the k6 scenario (it must have the 20/20/40/20 black-friday shape)")
	fs.Float64Var(&noise, "noise", "STAMPEDE_CHAOS_NOISE", 0, "run a CPU hog of this many cores (stampede noise, normal priority) beside the load, to prove the verdict on a busy host; reported with what it took")
	fs.BoolVar(&ignoreSteady, "ignore-steady-state", "", false, "run the method even if the hypothesis fails before it (a shared development stack)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("chaos takes no arguments, got %q", fs.Args())
	}
	faults, err := chaos.Faults(profile)
	if err != nil {
		return err
	}
	if duration == 0 {
		duration = chaos.DefaultDuration(profile)
	}
	if baseRate <= 0 {
		return fmt.Errorf("--base-rate: want more than 0, got %v", baseRate)
	}
	if noise < 0 || noise > 64 {
		return fmt.Errorf("--noise %g: want 0 (none) to 64 cores", noise)
	}
	if maxComp <= 0 || maxLag <= 0 || maxRecovery <= 0 {
		return fmt.Errorf("--max-compensation, --max-lag and --max-recovery must be positive")
	}
	if faults, err = chaos.Select(faults, splitComma(only), splitComma(skip)); err != nil {
		return err
	}
	if faults, err = chaos.Override(faults, durations); err != nil {
		return err
	}
	for i := range faults {
		if faults[i].Kind == chaos.KindOutage && faults[i].Duration <= budget {
			return fmt.Errorf("fault %s lasts %s, not longer than --outage-budget %s: orders would not fail", faults[i].Name, faults[i].Duration, budget)
		}
	}
	plan, err := chaos.Plan(faults, duration, int64(seed))
	if err != nil {
		return err
	}
	s, err := sf.stack(os.Stdout)
	if err != nil {
		return err
	}
	s.Out = nil // the launcher's lines would break the live line; the run logs what it does
	if k6 == "" {
		k6 = filepath.Join(s.BinDir, "k6")
	}
	if _, err := os.Stat(k6); err != nil {
		return fmt.Errorf("%s is missing: build it with `make k6`", k6)
	}
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("--script %s: %w", script, err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the stampede binary for --noise: %w", err)
	}
	run := time.Now().UTC().Format("20060102T150405Z") + "-chaos-" + profile
	if out == "" {
		out = filepath.Join("results", run)
	} else {
		run = filepath.Base(out)
	}
	if budget <= 0 || profile == chaos.ProfileShort {
		budget = 0
	}
	progress, plain := os.Stderr, !isTerminal(os.Stderr)
	cfg := chaos.Config{
		Run: run, Out: out, Profile: profile, Faults: plan, Duration: duration, BaseRate: baseRate, Seed: int64(seed),
		Limits:  verify.Limits{MaxCompensation: maxComp, MaxLag: maxLag, MaxRecovery: maxRecovery},
		Command: "stampede chaos " + strings.Join(args, " "),
		K6:      k6, Script: script, OrdersURL: config.ServiceURL(config.Orders),
		PromURL:       "http://" + config.Addr(config.Prometheus),
		ToxiproxyAddr: config.Addr(config.Toxiproxy),
		Brokers:       config.KafkaBrokers(),
		PostgresURL:   config.PostgresURL(),
		TemporalAddr:  config.TemporalAddress(), Namespace: config.TemporalNamespace(),
		ChargeLatency: chargeLat, OutageBudget: budget, SettleTimeout: settle,
		IgnoreSteadyState: ignoreSteady,
		Noise:             noise, NoiseBin: self,
		Stack: s, Progress: progress, PlainProgress: plain, Log: os.Stdout,
	}
	fmt.Printf("chaos run %s: profile %s, seed %d, DURATION %s, BASE_RATE %v (peak %v/s); results in %s\n",
		run, profile, seed, duration, baseRate, baseRate*5, out)
	for _, p := range plan {
		fmt.Printf("  +%-8s %-18s %-11s %-15s for %s\n", p.At, p.Name, p.Kind, p.Target, p.Duration)
	}
	start := time.Now()
	res, err := chaos.New(cfg).Run(ctx)
	printOutcome(res, out, time.Since(start))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, chaos.ErrGates):
		return chaosExit{fmt.Errorf("chaos run %s FAILED: see %s", run, filepath.Join(out, "report.html")), 1}
	default:
		return chaosExit{fmt.Errorf("chaos run %s could not complete: %w (report: %s)", run, err, filepath.Join(out, "report.html")), 2}
	}
}

func printOutcome(r *report.Result, out string, wall time.Duration) {
	if r == nil {
		return
	}
	fmt.Printf("\n%d orders placed; ", r.Placed)
	for _, c := range []string{verify.ClassOK, verify.ClassCompensated, verify.ClassUnacked, verify.ClassRejected, verify.ClassPending, verify.ClassLost, verify.ClassDuplicated, verify.ClassInconsistent} {
		fmt.Printf("%s %d  ", c, r.Counts[c])
	}
	fmt.Printf("\ncompensation %s\n", r.Compensation)
	if n := r.Noise; n != nil {
		fmt.Printf("noise: CPU hog of %g cores beside the load used %.1f CPU-s in %s (%.2f cores)\n", n.Cores, n.CPU.Seconds(), n.Wall.Round(time.Second), n.CoresUsed)
	}
	for _, l := range r.Lag {
		fmt.Printf("lag [%s]: p99 %s, max %s over %d samples", l.Source, l.P99.Round(time.Millisecond), l.Max.Round(time.Millisecond), l.Samples)
		for _, rc := range l.Recovery {
			fmt.Printf("; %s: max %s, recovered after %s", rc.Fault, rc.MaxLag.Round(time.Millisecond), rc.Recovery.Round(time.Millisecond))
		}
		fmt.Println()
	}
	if len(r.Gates) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nGATE\tTHRESHOLD\tVALUE\tVERDICT")
		for _, g := range r.Gates {
			v := "pass"
			if !g.Pass {
				v = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Threshold, g.Value, v)
		}
		tw.Flush()
		for _, g := range r.Gates {
			if g.Pass {
				continue
			}
			fmt.Printf("\nFAILED %s (%s):\n", g.Name, g.Value)
			if len(g.Orders) > 0 {
				fmt.Printf("  orders: %s\n", strings.Join(g.Orders, ", "))
			}
			if g.Detail != "" {
				fmt.Printf("  %s\n", strings.ReplaceAll(g.Detail, "\n", "\n  "))
			}
		}
	}
	verdict := "FAIL"
	if r.Passed {
		verdict = "PASS"
	}
	fmt.Printf("\nchaos %s: %s in %s (seed %d); report %s\n", r.Run, verdict, wall.Round(time.Second), r.Seed, filepath.Join(out, "report.html"))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
