package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/verify"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/orchestrator"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/saga"
)

// Mutation is one broken platform of the selftest: a realistic defect,
// armed by failpoints (platform/failpoint) in the components that carry it,
// run with the shortest load and fault schedule that can expose it. The
// audit proves it can see only if every mutation fails the run with the
// gate (and class of orders) named here.
type Mutation struct {
	Name   string
	Defect string
	Arm    []Arming
	// Platform is verify.PlatformRest for the REST-chain baseline.
	Platform string
	// Faults is the schedule, offsets from the load's start; Duration the
	// k6 DURATION (black-friday's 5x hold is its middle 40%), Mix the k6 MIX
	// ("" for the scenario's own).
	Faults   []Planned
	Duration time.Duration
	Mix      string
	// Gate is the gate that must fail (a prefix of its name); Class the
	// class of orders that must be counted ("" when the gate alone shows it).
	Gate  string
	Class string
	// OrGate and OrClass, when set, are a second effect of the same defect
	// that also catches it: which one a run shows depends on the load (a
	// charge taken twice is a duplicate on an order that completes, and a
	// charge kept on an order that fails).
	OrGate  string
	OrClass string
	// CI marks the fast subset CI runs (SUBSET=ci).
	CI bool
}

// Expected is the table's "expected" column.
func (m Mutation) Expected() string {
	out := "FAIL: " + expectation(m.Gate, m.Class)
	if m.OrGate != "" {
		out += ", or " + expectation(m.OrGate, m.OrClass)
	}
	return out
}

func expectation(gate, class string) string {
	if class == "" {
		return gate
	}
	return gate + " / " + class
}

func at(d time.Duration, s Spec) Planned { return Planned{Spec: s, At: d} }

var (
	paymentsRefused = func(d time.Duration) Spec {
		return Spec{Name: "payments-refused", Kind: KindDisable, Target: "payments", Duration: d, Note: "payments proxy disabled: every connection refused"}
	}
	paymentsSlow = func(latency, d time.Duration) Spec {
		return Spec{Name: "payments-latency", Kind: KindLatency, Target: "payments", Duration: d, Latency: latency,
			Note: fmt.Sprintf("latency toxic %s on Payments' answers", latency)}
	}
)

func relayCrashSpec(name string) Spec {
	return Spec{Name: name, Kind: KindRelayCrash, Target: "relay", Duration: 3 * time.Second,
		Note: "relay restarted to die before it publishes (after it marked the rows)"}
}

// gateOf names the gates mutations expect.
const (
	gateLost         = "lost orders"
	gateDuplicated   = "duplicated orders"
	gateInconsistent = "inconsistent orders"
	gateCompensation = "compensation time"
	gateStock        = "stock returned"
)

// Mutations is the selftest: every defect the issue lists, each with the
// schedule chosen to expose it, and the REST-chain baseline.
func Mutations() []Mutation {
	workers := func(fp ...string) []Arming { return []Arming{{Component: "worker-*", Failpoints: fp}} }
	orchestrators := func(fp ...string) []Arming { return []Arming{{Component: "orchestrator-*", Failpoints: fp}} }
	one := func(c string, fp ...string) []Arming { return []Arming{{Component: c, Failpoints: fp}} }
	short, medium := 40*time.Second, 60*time.Second
	return []Mutation{
		{Name: "dual-write", Defect: "Orders publishes order.created outside its transaction (commit, then a direct Kafka produce, a failure only logged)",
			Arm: one("orders", order.FailPublishOutsideOutbox), Duration: medium,
			Faults: []Planned{at(26*time.Second, Spec{Name: "kafka-restart", Kind: KindRestart, Target: "kafka", Duration: 5 * time.Second, Consumer: true,
				Note: "Kafka broker stopped and started: orders accepted meanwhile have no event"})},
			Gate: gateLost, Class: verify.ClassLost},
		{Name: "relay-mark-before-commit", Defect: "the relay marks rows sent before their Kafka transaction commits",
			Arm: one("relay", outbox.FailMarkBeforeCommit), Duration: medium,
			// Each crash loses the one batch the relay claimed as it came
			// back (a handful of rows, sometimes one order): three of them.
			Faults: []Planned{
				at(26*time.Second, relayCrashSpec("relay-crash-1")),
				at(33*time.Second, relayCrashSpec("relay-crash-2")),
				at(40*time.Second, relayCrashSpec("relay-crash-3")),
			},
			Gate: gateLost, Class: verify.ClassLost},
		{Name: "commit-before-start", Defect: "an orchestrator commits a record's offset before its workflow is started",
			Arm: orchestrators(orchestrator.FailCommitBeforeStart), Duration: medium,
			Faults: []Planned{
				at(26*time.Second, Spec{Name: "temporal-restart", Kind: KindRestart, Target: "temporal", Duration: 10 * time.Second, Consumer: true,
					Note: "Temporal stopped: every partition's next start is retried"}),
				at(30*time.Second, Spec{Name: "orchestrator-kill", Kind: KindKill, Target: "orchestrator-2", Duration: 5 * time.Second, Consumer: true,
					Note: "SIGKILL of an orchestrator member while its starts wait for Temporal"}),
			},
			Gate: gateLost, Class: verify.ClassLost},
		{Name: "poison-dropped", Defect: "an undecodable record is dropped without dead-lettering, and the next record of its partition with it",
			Arm: orchestrators(orchestrator.FailDropPoison), Duration: medium,
			Faults: []Planned{at(28*time.Second, Spec{Name: "poison-event", Kind: KindPoison, Target: "orders", Duration: 2 * time.Second,
				Note: "an undecodable record in topic orders"})},
			Gate: gateLost, Class: verify.ClassLost},
		{Name: "skip-refund", Defect: "the refund compensation reports success without refunding",
			Arm: workers(saga.FailSkipRefund), Duration: short, Mix: "declined=0.05,out_of_stock=0.02,undeliverable=0.15",
			Gate: gateInconsistent, Class: verify.ClassInconsistent, CI: true},
		{Name: "release-nothing", Defect: "Inventory's release by order answers success and releases nothing",
			Arm: one("inventory", inventory.FailReleaseNothing), Duration: short, Mix: "declined=0.15,out_of_stock=0.02,undeliverable=0.01",
			Gate: gateInconsistent, Class: verify.ClassInconsistent},
		{Name: "compensation-give-up", Defect: "a compensation that fails once is given up and reported done",
			Arm: workers(saga.FailCompensationGiveUp), Duration: medium, Mix: "declined=0.2,out_of_stock=0.02,undeliverable=0.1",
			Faults: []Planned{
				at(24*time.Second, paymentsSlow(2*time.Second, 22*time.Second)),
				at(30*time.Second, Spec{Name: "inventory-kill", Kind: KindKill, Target: "inventory", Duration: 5 * time.Second,
					Note: "SIGKILL of Inventory while charges (slowed) are in flight: their releases fail once"}),
			},
			Gate: gateInconsistent, Class: verify.ClassInconsistent},
		{Name: "short-budget", Defect: "the saga's outage budget is cut to 5 s (the configured budget never reaches it)",
			Arm: workers(saga.FailShortBudget), Duration: medium,
			Faults: []Planned{at(26*time.Second, paymentsRefused(15*time.Second))},
			Gate:   gateInconsistent, Class: verify.ClassInconsistent},
		{Name: "charge-fresh-key", Defect: "each charge attempt carries a new idempotency key instead of the order's",
			Arm: workers(saga.FailChargeFreshKey), Duration: medium,
			Faults: []Planned{at(26*time.Second, paymentsSlow(3500*time.Millisecond, 10*time.Second))},
			Gate:   gateDuplicated, Class: verify.ClassDuplicated,
			// At a 20/s peak most such orders fail instead, keeping the
			// charge their saga never knew of: half done, not refunded.
			OrGate: gateInconsistent, OrClass: verify.ClassInconsistent},
		{Name: "notify-resend", Defect: "a retried notification sends its delivered channels again under a new key (sent twice)",
			Arm: one("notifications", notification.FailResendOnRetry), Duration: short,
			Gate: gateDuplicated, Class: verify.ClassDuplicated},
		{Name: "compensation-delay", Defect: "the saga waits 40 s before it compensates, its own account starting after the wait",
			Arm: workers(saga.FailCompensationDelay), Duration: short,
			Gate: gateCompensation},
		{Name: "orchestrator-slow", Defect: "the orchestrators spend 150 ms on every record",
			Arm: orchestrators(orchestrator.FailSlow), Duration: short,
			Gate: "consumer lag (" + SourceSampler + ")", CI: true},
		{Name: "projection-drops-failed", Defect: "the Orders projection drops failed status events",
			Arm: one("orders", order.FailProjectionDropsFailed), Duration: short,
			Gate: gateInconsistent, Class: verify.ClassInconsistent, CI: true},
		{Name: "reserve-per-line", Defect: "Inventory holds stock line by line outside the reservation's transaction",
			Arm: one("inventory", inventory.FailReservePerLine), Duration: short, Mix: "declined=0.05,out_of_stock=0.15,undeliverable=0.01",
			Gate: gateStock},
		{Name: "charge-off-by-one", Defect: "the saga sums the charge from the lines with a loop bound off by one (one line's price short)",
			Arm: workers(saga.FailChargeOffByOne), Duration: short,
			Gate: gateInconsistent, Class: verify.ClassInconsistent, CI: true},
		{Name: "rest-baseline", Defect: "the REST-chain baseline: Orders calls Inventory, Payments, Shipping in the request; no outbox, no saga",
			Platform: verify.PlatformRest, Duration: medium,
			Faults: []Planned{at(26*time.Second, paymentsRefused(15*time.Second))},
			Gate:   gateInconsistent, Class: verify.ClassInconsistent},
	}
}

// SelectMutations returns the mutations named (all when none), or the CI
// subset; an unknown name is an error naming it and the known ones.
func SelectMutations(names []string, subset string) ([]Mutation, error) {
	all := Mutations()
	switch subset {
	case "", "all":
	case "ci":
		var out []Mutation
		for _, m := range all {
			if m.CI {
				out = append(out, m)
			}
		}
		all = out
	default:
		return nil, fmt.Errorf("%w: subset %q: want all or ci", ErrBadInput, subset)
	}
	if len(names) == 0 {
		return all, nil
	}
	by := map[string]Mutation{}
	var known []string
	for _, m := range Mutations() {
		by[m.Name] = m
		known = append(known, m.Name)
	}
	var out []Mutation
	for _, n := range names {
		m, ok := by[n]
		if !ok {
			return nil, fmt.Errorf("%w: unknown mutation %q (known: %s)", ErrBadInput, n, strings.Join(known, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// Config is the run of m on top of base (the clean run's settings).
func (m Mutation) Config(base Config, dir string) Config {
	cfg := base
	// The run names the ledger's idempotency keys: unique per selftest, so
	// no run replays another's orders.
	cfg.Run = filepath.Base(filepath.Dir(dir)) + "-" + filepath.Base(dir)
	cfg.Out = dir
	cfg.Profile = "selftest:" + m.Name
	cfg.Mutation = m.Name
	cfg.Arm = m.Arm
	cfg.Platform = m.Platform
	cfg.Faults = m.Faults
	cfg.Duration = m.Duration
	cfg.K6Env = append([]string(nil), base.K6Env...)
	if m.Mix != "" {
		cfg.K6Env = append(cfg.K6Env, "MIX="+m.Mix)
	}
	cfg.ChargeLatency = 0
	for _, f := range m.Faults {
		if f.Kind == KindKill && f.Target == "payments" {
			cfg.ChargeLatency = base.ChargeLatency
		}
	}
	cfg.OutageBudget = 0
	// The clean run warms the stack; a mutated run follows another run.
	cfg.Warmup = 0
	cfg.Command = base.Command + " (mutation " + m.Name + ")"
	return cfg
}

// SelftestRow is one line of the selftest's table.
type SelftestRow struct {
	Mutation string        `json:"mutation"`
	Defect   string        `json:"defect"`
	Expected string        `json:"expected"`
	Verdict  string        `json:"verdict"` // caught, MISSED, ERROR (or pass / FAIL for the clean run)
	Got      string        `json:"got"`     // the gates that failed, the classes counted
	Time     time.Duration `json:"timeNs"`
	Report   string        `json:"report"`
	OK       bool          `json:"ok"`
}

// Judge decides a mutated run: caught only when the run failed its gates,
// the expected gate among them, with the expected class counted.
func (m Mutation) Judge(res *report.Result, err error) (ok bool, verdict, got string) {
	got = failedGates(res)
	switch {
	case err != nil && !errors.Is(err, ErrGates):
		return false, "ERROR", err.Error()
	case err == nil:
		return false, "MISSED", "the run passed every gate"
	}
	shows := func(gate, class string) bool {
		for _, g := range res.Gates {
			if !g.Pass && strings.HasPrefix(g.Name, gate) {
				return class == "" || res.Counts[class] > 0
			}
		}
		return false
	}
	if !shows(m.Gate, m.Class) && (m.OrGate == "" || !shows(m.OrGate, m.OrClass)) {
		return false, "MISSED", "expected " + strings.TrimPrefix(m.Expected(), "FAIL: ") + "; failed: " + got
	}
	return true, "caught", got
}

func failedGates(res *report.Result) string {
	if res == nil {
		return ""
	}
	var parts []string
	for _, g := range res.Gates {
		if !g.Pass {
			parts = append(parts, g.Name+" ("+g.Value+")")
		}
	}
	var counts []string
	for _, c := range []string{verify.ClassLost, verify.ClassDuplicated, verify.ClassInconsistent} {
		if n := res.Counts[c]; n > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", c, n))
		}
	}
	out := strings.Join(parts, "; ")
	if len(counts) > 0 {
		out += " [" + strings.Join(counts, ", ") + "]"
	}
	return out
}

// PrintSelftest writes the table: mutation -> expected -> verdict -> time.
func PrintSelftest(w io.Writer, rows []SelftestRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MUTATION\tEXPECTED\tVERDICT\tTIME")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Mutation, r.Expected, r.Verdict, r.Time.Round(time.Second))
	}
	tw.Flush()
}

// SelftestMarkdown is the table as the README shows it.
func SelftestMarkdown(rows []SelftestRow) string {
	var b strings.Builder
	b.WriteString("| mutation | defect | expected | verdict | what failed | time |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		got := strings.ReplaceAll(r.Got, "|", "/")
		if len(got) > 160 {
			got = got[:160] + "…"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Mutation, r.Defect, r.Expected, r.Verdict, got, r.Time.Round(time.Second))
	}
	return b.String()
}

// Selftest runs the clean run first, then each mutation, and returns the
// table; run is how one experiment runs (chaos.New(cfg).Run in the CLI). ok
// is true only when the clean run passed and every mutation was caught.
//
// The clean run comes first, as a mutation-testing tool runs the unmutated
// suite before any mutant: it is the run make chaos is (it warms the stack;
// the mutated runs do not), on the stack as the user left it rather than on
// the state sixteen broken platforms leave behind, and a baseline that fails
// is known half an hour sooner. Every mutation still runs after a failed
// baseline, so the table is whole.
func Selftest(ctx context.Context, ms []Mutation, clean *Config, base Config, dir string, run func(context.Context, Config) (*report.Result, error), log io.Writer) (rows []SelftestRow, ok bool) {
	ok = true
	n := 0 // runs so far, for the directories' order
	if clean != nil && ctx.Err() == nil {
		n++
		cfg := *clean
		cfg.Out = filepath.Join(dir, fmt.Sprintf("%02d-clean-%s", n, cfg.Profile))
		cfg.Run = filepath.Base(dir) + "-" + filepath.Base(cfg.Out)
		fmt.Fprintf(log, "\n=== clean run: profile %s, %d faults, nothing armed; expected PASS\n", cfg.Profile, len(cfg.Faults))
		start := time.Now()
		res, err := run(ctx, cfg)
		row := SelftestRow{Mutation: "(clean, profile " + cfg.Profile + ")", Defect: "none", Expected: "PASS", Time: time.Since(start), Report: filepath.Join(cfg.Out, "report.html")}
		switch {
		case err == nil:
			row.OK, row.Verdict = true, "pass"
		case errors.Is(err, ErrGates):
			row.Verdict, row.Got = "FAIL", failedGates(res)
		default:
			row.Verdict, row.Got = "ERROR", err.Error()
		}
		fmt.Fprintf(log, "=== clean run: %s in %s %s\n", row.Verdict, row.Time.Round(time.Second), row.Got)
		ok = ok && row.OK
		rows = append(rows, row)
	}
	for _, m := range ms {
		if ctx.Err() != nil {
			break
		}
		n++
		out := filepath.Join(dir, fmt.Sprintf("%02d-%s", n, m.Name))
		cfg := m.Config(base, out)
		fmt.Fprintf(log, "\n=== mutation %s: %s\n    armed: %s; load %s; faults: %s; expected %s\n", m.Name, m.Defect, armString(m.Arm, m.Platform), m.Duration, faultString(m.Faults), m.Expected())
		start := time.Now()
		res, err := run(ctx, cfg)
		row := SelftestRow{Mutation: m.Name, Defect: m.Defect, Expected: m.Expected(), Time: time.Since(start), Report: filepath.Join(out, "report.html")}
		row.OK, row.Verdict, row.Got = m.Judge(res, err)
		fmt.Fprintf(log, "=== mutation %s: %s in %s: %s\n", m.Name, row.Verdict, row.Time.Round(time.Second), row.Got)
		ok = ok && row.OK
		rows = append(rows, row)
	}
	if ctx.Err() != nil {
		ok = false
	}
	return rows, ok
}

func armString(a []Arming, platform string) string {
	var parts []string
	if platform == verify.PlatformRest {
		parts = append(parts, "orders with "+"STAMPEDE_ORDERS_CHAIN=rest")
	}
	for _, x := range a {
		parts = append(parts, x.Component+": "+strings.Join(x.Failpoints, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func faultString(ps []Planned) string {
	if len(ps) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s +%s for %s", p.Name, p.At, p.Duration))
	}
	return strings.Join(parts, ", ")
}
