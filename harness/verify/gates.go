package verify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stampede-dev/stampede/harness/stats"
)

// Limits are the thresholds of the gates.
type Limits struct {
	MaxCompensation time.Duration // every compensation completes within this (p100)
	MaxLag          time.Duration // consumer lag, max from the load's start until settled, outside consumer faults
	// MaxRecovery bounds, for each consumer fault, the time from the fault's
	// end (the component back) to lag under MaxLag again.
	MaxRecovery time.Duration
	// MaxGap is the longest a lag source may go without a sample (its polls
	// failing) outside consumer faults: lag nobody measured is not under
	// the limit.
	MaxGap time.Duration
	// MaxIntakeFailures is the share of placements outside fault windows
	// that may be rejected or left unacknowledged.
	MaxIntakeFailures float64
	// IntakeMargin widens each fault's window after its end for the
	// intake gate: the stated time a platform gets to recover.
	IntakeMargin time.Duration
	// SourceLag overrides MaxLag for some lag sources (the Orders
	// projection, whose lag is how stale GET /v1/orders/{id} is, not
	// order intake).
	SourceLag map[string]time.Duration
}

// lagLimit is the lag limit of one source.
func (l Limits) lagLimit(src string) time.Duration {
	if d, ok := l.SourceLag[src]; ok && d > 0 {
		return d
	}
	return l.MaxLag
}

// DefaultLimits are the mission's targets.
var DefaultLimits = Limits{MaxCompensation: 30 * time.Second, MaxLag: 100 * time.Millisecond, MaxRecovery: 15 * time.Second,
	MaxGap: 2 * time.Second, MaxIntakeFailures: 0.001, IntakeMargin: 5 * time.Second}

// LagSample is one measurement of consumer lag in time.
type LagSample struct {
	At  time.Time     `json:"at"`
	Lag time.Duration `json:"lagNs"`
	// Blind: the source could not see all of the lag (the sampler's tail
	// behind the group after a broker restart); its Lag is a floor, and it
	// never counts as lag having recovered.
	Blind bool `json:"blind,omitempty"`
}

// Window is a declared fault. Consumer faults (a killed orchestrator member,
// a broker restart) are expected to raise lag: their windows, up to the
// moment lag recovers, are excluded from the lag gate and reported apart.
type Window struct {
	Name     string    `json:"name"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Consumer bool      `json:"consumer"`
	// Target is what the fault broke; Unreachable says it could not be
	// reached at all meanwhile (refused, hung, reset, killed), which a
	// latency or a bad record is not.
	Target      string `json:"target,omitempty"`
	Unreachable bool   `json:"unreachable,omitempty"`
}

// Unreachable is how much of [from, to] the harness's fault record shows
// target unreachable (overlapping windows counted once).
func Unreachable(faults []Window, target string, from, to time.Time) time.Duration {
	type span struct{ a, b time.Time }
	var spans []span
	for _, f := range faults {
		if f.Target != target || !f.Unreachable {
			continue
		}
		a, b := f.Start, f.End
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			spans = append(spans, span{a, b})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a.Before(spans[j].a) })
	var total time.Duration
	var end time.Time
	for _, s := range spans {
		if s.a.Before(end) {
			s.a = end
		}
		if s.b.After(s.a) {
			total += s.b.Sub(s.a)
			end = s.b
		}
	}
	return total
}

// Gate is one pass/fail criterion of a run.
type Gate struct {
	Name      string   `json:"name"`
	Threshold string   `json:"threshold"`
	Value     string   `json:"value"`
	Pass      bool     `json:"pass"`
	Orders    []string `json:"orders,omitempty"` // the orders behind a failure (at most 20)
	Detail    string   `json:"detail,omitempty"`
}

// LagReport is what one lag source measured.
type LagReport struct {
	Source  string        `json:"source"`
	Samples int           `json:"samples"`
	P99     time.Duration `json:"p99Ns"`
	Max     time.Duration `json:"maxNs"` // outside consumer fault windows
	MaxAt   time.Time     `json:"maxAt"`
	// OverSeconds is in how many distinct seconds (outside consumer
	// faults) a sample reached the limit: one spike or a band.
	OverSeconds int             `json:"overSeconds"`
	Recovery    []FaultRecovery `json:"recovery,omitempty"`
	// AfterLoad is the highest lag from the load's end until settled.
	AfterLoad time.Duration `json:"afterLoadNs"`
	// Gaps are the stretches without a sample (failed polls), reported
	// whether or not they fail the gate; LongestGap is outside consumer faults.
	Gaps       []Gap         `json:"gaps,omitempty"`
	LongestGap time.Duration `json:"longestGapNs"`
}

// Gap is a stretch of time a lag source has no sample for: its polls failed.
type Gap struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

// FaultRecovery is how a consumer fault window affected lag.
type FaultRecovery struct {
	Fault    string        `json:"fault"`
	MaxLag   time.Duration `json:"maxLagNs"`
	Recovery time.Duration `json:"recoveryNs"` // fault start -> lag back under the limit; -1 if never
	// AfterEnd is fault end (healed) -> lag back under the limit; -1 if never.
	AfterEnd time.Duration `json:"afterEndNs"`
	// InterruptedBy is the next consumer fault, when it began before lag
	// had recovered from this one and less than the recovery limit after
	// this one's end: from its start the lag is that fault's to recover
	// (its window is excluded and its recovery gated), and AfterEnd is -1.
	InterruptedBy string        `json:"interruptedBy,omitempty"`
	Interrupted   time.Duration `json:"interruptedAfterEndNs,omitempty"` // this fault's end -> the next one's start
}

// Outcome says how the lag came back after the fault: "recovered after D"
// (from the fault's start), "never recovered", or that the next consumer
// fault began first.
func (fr FaultRecovery) Outcome() string {
	switch {
	case fr.InterruptedBy != "":
		return fmt.Sprintf("not back when %s began %s after its end", fr.InterruptedBy, fr.Interrupted.Round(100*time.Millisecond))
	case fr.Recovery < 0:
		return "never recovered"
	}
	return "recovered after " + fr.Recovery.Round(time.Millisecond).String()
}

// Input is everything the gates are evaluated on.
type Input struct {
	Verdicts []Verdict
	Lag      map[string][]LagSample // by source, from the load's start until settled
	Gaps     map[string][]Gap       // by source: failed samples
	// LoadEnd splits the lag series: what follows it is the settling.
	LoadEnd    time.Time
	Faults     []Window
	K6Passed   bool
	K6Failures []string // names of failed k6 thresholds
	Limits     Limits
	// ExpectCompensations is how many orders of the ledger must have been
	// undone (expected to fail after something was done for them: a
	// declined card, an undeliverable address).
	ExpectCompensations int
	// Orphans are what the stores hold that the ledger does not account
	// for; OrphansGated fails the run on them (no other client used the
	// stack).
	Orphans      []Orphan
	OrphansGated bool
	// Ledger is the ledger reconciled with k6's own counters; nil: not checked.
	Ledger *LedgerCheck
	// Attempts are the ledger's placements, for the intake gate; nil: not gated.
	Attempts []Attempt
}

// LedgerCheck is the ledger's count of placements by outcome beside k6's
// own counters of the same (orders_placed, orders_rejected, orders_unknown).
type LedgerCheck struct {
	Ledger map[string]int `json:"ledger"`
	K6     map[string]int `json:"k6"`
	Err    string         `json:"error,omitempty"` // k6's counters could not be read
}

// Evaluate returns the gates and the per-source lag reports.
func Evaluate(in Input) ([]Gate, []LagReport) {
	var gates []Gate
	for _, class := range []string{ClassLost, ClassDuplicated, ClassInconsistent} {
		n := 0
		for _, v := range in.Verdicts {
			if v.Class == class {
				n++
			}
		}
		g := Gate{Name: class + " orders", Threshold: "= 0", Value: fmt.Sprint(n), Pass: n == 0}
		if n > 0 {
			g.Orders = Named(in.Verdicts, class, 20)
			g.Detail = firstReasons(in.Verdicts, class, 5)
		}
		gates = append(gates, g)
	}
	gates = append(gates, compensationGate(in), orphanGate(in))
	if in.Ledger != nil {
		gates = append(gates, ledgerGate(*in.Ledger))
	}
	if in.Attempts != nil {
		gates = append(gates, IntakeGate(in.Attempts, in.Faults, in.Limits))
	}

	var reports []LagReport
	sources := make([]string, 0, len(in.Lag))
	for s := range in.Lag {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, src := range sources {
		limits := in.Limits
		limits.MaxLag = in.Limits.lagLimit(src)
		r := lagReport(src, in.Lag[src], in.Faults, limits.MaxLag, limits.MaxRecovery)
		r.Gaps = in.Gaps[src]
		r.LongestGap = longestGap(r.Gaps, in.Faults)
		for _, s := range in.Lag[src] {
			if !in.LoadEnd.IsZero() && s.At.After(in.LoadEnd) && s.Lag > r.AfterLoad {
				r.AfterLoad = s.Lag
			}
		}
		reports = append(reports, r)
		g := Gate{Name: "consumer lag (" + src + ")",
			Threshold: "max < " + limits.MaxLag.String() + " from the load's start until settled, outside consumer faults; no sample missing for " + limits.MaxGap.String(),
			Value: fmt.Sprintf("max %s, p99 %s over %d samples; after the load %s; %d gaps, longest %s", r.Max.Round(time.Millisecond),
				r.P99.Round(time.Millisecond), r.Samples, r.AfterLoad.Round(time.Millisecond), len(r.Gaps), r.LongestGap.Round(time.Millisecond)),
			Pass: r.Samples > 0 && r.Max < limits.MaxLag && (limits.MaxGap <= 0 || r.LongestGap < limits.MaxGap)}
		var why []string
		if r.Samples == 0 {
			why = append(why, "no lag samples: the source measured nothing")
		} else if r.Max >= limits.MaxLag {
			at := "highest at " + r.MaxAt.Format(time.RFC3339Nano)
			if c := FaultContext(in.Faults, r.MaxAt); c != "" {
				at += ", " + c
			}
			why = append(why, fmt.Sprintf("%s; at or over the limit in %d distinct second(s)", at, r.OverSeconds))
		}
		if limits.MaxGap > 0 && r.LongestGap >= limits.MaxGap {
			why = append(why, fmt.Sprintf("lag unknown for %s outside consumer faults (failed samples)", r.LongestGap.Round(time.Millisecond)))
		}
		for i, gp := range r.Gaps {
			if i == 5 {
				why = append(why, fmt.Sprintf("... %d gaps in all", len(r.Gaps)))
				break
			}
			why = append(why, fmt.Sprintf("gap %s..%s: %s", gp.From.Format("15:04:05.000"), gp.To.Format("15:04:05.000"), gp.Reason))
		}
		g.Detail = strings.Join(why, "\n")
		gates = append(gates, g)
		if limits.MaxRecovery > 0 {
			gates = append(gates, recoveryGate(src, r, limits))
		}
	}
	k6 := Gate{Name: "k6 thresholds", Threshold: "all pass (incl. dropped_iterations == 0)", Pass: in.K6Passed, Value: "pass"}
	if !in.K6Passed {
		k6.Value = "failed: " + strings.Join(in.K6Failures, ", ")
	}
	gates = append(gates, k6)
	return gates, reports
}

// recoveryGate holds when lag came back under the limit within MaxRecovery
// of the end of every consumer fault; a fault after which it never came back
// fails it. With no consumer fault in the run there is nothing to recover
// from, and the value says so.
func recoveryGate(src string, r LagReport, l Limits) Gate {
	g := Gate{Name: "consumer recovery (" + src + ")",
		Threshold: "lag < " + l.MaxLag.String() + " for " + Settled.String() + " within " + l.MaxRecovery.String() + " of each consumer fault's end", Pass: true}
	if len(r.Recovery) == 0 {
		g.Value = "no consumer faults in the run"
		return g
	}
	var parts, bad []string
	for _, fr := range r.Recovery {
		switch {
		case fr.InterruptedBy != "":
			parts = append(parts, fr.Fault+" "+fr.Outcome())
		case fr.AfterEnd < 0:
			parts = append(parts, fr.Fault+" never recovered")
			bad = append(bad, fr.Fault+": lag never came back under "+l.MaxLag.String()+fmt.Sprintf(" (max %s)", fr.MaxLag.Round(time.Millisecond)))
		default:
			parts = append(parts, fmt.Sprintf("%s %s", fr.Fault, fr.AfterEnd.Round(100*time.Millisecond)))
			if fr.AfterEnd > l.MaxRecovery {
				bad = append(bad, fmt.Sprintf("%s: %s after the fault ended (max lag %s)", fr.Fault, fr.AfterEnd.Round(100*time.Millisecond), fr.MaxLag.Round(time.Millisecond)))
			}
		}
	}
	g.Value = strings.Join(parts, ", ")
	if len(bad) > 0 {
		g.Pass = false
		g.Detail = strings.Join(bad, "\n")
	}
	return g
}

// compensationGate times every compensation from the stores' and
// Temporal's clocks (the failed step's end in the history -> the last undo
// row), never the saga's own account. A run whose ledger expects
// compensations and that measured none fails: n=0 proves nothing.
func compensationGate(in Input) Gate {
	var times []time.Duration
	var slow, unmeasured []string
	for _, v := range in.Verdicts {
		// Every order the stores show undone, whatever else is wrong with
		// it (a stale view, a missing notification): its undo took this long.
		if v.Unmeasured != "" {
			unmeasured = append(unmeasured, v.OrderID+": "+v.Unmeasured)
		}
		if !v.Compensated {
			continue
		}
		times = append(times, v.CompensationTime)
		if v.CompensationTime >= in.Limits.MaxCompensation {
			slow = append(slow, v.OrderID)
		}
	}
	d := stats.Summarise(times)
	g := Gate{Name: "compensation time", Threshold: fmt.Sprintf("p100 < %s, failure (Temporal history) -> last undo row (stores); n > 0 when the ledger expects compensations", in.Limits.MaxCompensation),
		Value: fmt.Sprintf("n=%d p50=%s p99=%s max=%s (%d expected)", d.N, d.P50.Round(time.Millisecond), d.P99.Round(time.Millisecond), d.Max.Round(time.Millisecond), in.ExpectCompensations),
		Pass:  len(slow) == 0 && len(unmeasured) == 0 && (d.N > 0 || in.ExpectCompensations == 0)}
	var why []string
	if d.N == 0 && in.ExpectCompensations > 0 {
		why = append(why, fmt.Sprintf("no compensation measured, though %d orders of the ledger had to be undone", in.ExpectCompensations))
	}
	if len(slow) > 0 {
		why = append(why, fmt.Sprintf("%d compensations took %s or more", len(slow), in.Limits.MaxCompensation))
	}
	for i, u := range unmeasured {
		if i == 5 {
			why = append(why, fmt.Sprintf("... %d unmeasured in all", len(unmeasured)))
			break
		}
		why = append(why, "unmeasured: "+u)
	}
	g.Detail = strings.Join(why, "\n")
	sort.Strings(slow)
	if len(slow) > 20 {
		slow = slow[:20]
	}
	g.Orders = slow
	return g
}

// orphanGate reports what the stores hold that no ledger line asked for.
func orphanGate(in Input) Gate {
	g := Gate{Name: "orphans", Threshold: "= 0: nothing in a store the ledger does not account for", Value: fmt.Sprint(len(in.Orphans)), Pass: true}
	if !in.OrphansGated {
		g.Threshold = "reported, not gated (other clients used the stack)"
	} else {
		g.Pass = len(in.Orphans) == 0
	}
	by := map[string]int{}
	var names []string
	for _, o := range in.Orphans {
		by[o.Kind]++
		if len(names) < 20 {
			names = append(names, o.Kind+" "+o.ID)
		}
	}
	if len(by) > 0 {
		var parts []string
		for _, k := range sortedKeys(by) {
			parts = append(parts, fmt.Sprintf("%d %ss", by[k], k))
		}
		g.Value = strings.Join(parts, ", ")
	}
	g.Detail = strings.Join(names, "\n")
	return g
}

// ledgerGate reconciles the ledger with k6's own counters: a placement the
// ledger missed is an order nobody audits.
func ledgerGate(l LedgerCheck) Gate {
	g := Gate{Name: "ledger complete", Threshold: "ledger lines = k6's orders_placed, orders_rejected, orders_unknown"}
	if l.Err != "" {
		g.Value, g.Detail = "unchecked", l.Err
		return g
	}
	var parts, bad []string
	for _, o := range []string{OutcomeAcked, OutcomeRejected, OutcomeUnknown} {
		parts = append(parts, fmt.Sprintf("%s %d/%d", o, l.Ledger[o], l.K6[o]))
		if l.Ledger[o] != l.K6[o] {
			bad = append(bad, fmt.Sprintf("%s: the ledger has %d, k6 counted %d", o, l.Ledger[o], l.K6[o]))
		}
	}
	g.Value = strings.Join(parts, ", ") + " (ledger/k6)"
	g.Pass = len(bad) == 0
	g.Detail = strings.Join(bad, "\n")
	return g
}

// IntakeGate counts the placements sent outside every fault's window
// (widened by the limits' IntakeMargin after its end) that were rejected or
// never acknowledged: over MaxIntakeFailures of them fails.
func IntakeGate(attempts []Attempt, faults []Window, l Limits) Gate {
	outside, failed, during := 0, 0, 0
	var names []string
	for _, a := range attempts {
		in := false
		for _, f := range faults {
			if !a.SentAt.Before(f.Start.Add(-time.Second)) && a.SentAt.Before(f.End.Add(l.IntakeMargin)) {
				in = true
				break
			}
		}
		if in {
			if a.Outcome != OutcomeAcked {
				during++
			}
			continue
		}
		outside++
		if a.Outcome != OutcomeAcked {
			failed++
			if len(names) < 20 {
				names = append(names, fmt.Sprintf("%s (%s, code %d, %s)", a.IdempotencyKey, a.Outcome, a.Code, a.Error))
			}
		}
	}
	share := 0.0
	if outside > 0 {
		share = float64(failed) / float64(outside)
	}
	return Gate{Name: "intake", Threshold: fmt.Sprintf("rejected + unacknowledged <= %.1f%% of placements outside fault windows (each fault's window + %s recovery margin)", l.MaxIntakeFailures*100, l.IntakeMargin),
		Value: fmt.Sprintf("%d of %d outside (%.2f%%); %d more inside fault windows", failed, outside, share*100, during),
		Pass:  share <= l.MaxIntakeFailures, Detail: strings.Join(names, "\n")}
}

// longestGap is the longest gap outside consumer fault windows.
func longestGap(gaps []Gap, faults []Window) time.Duration {
	var longest time.Duration
	for _, g := range gaps {
		d := g.To.Sub(g.From)
		for _, f := range faults {
			if f.Consumer && g.From.Before(f.End) && g.To.After(f.Start) {
				d = 0 // the consumer's own outage: lag is excluded there anyway
			}
		}
		longest = max(longest, d)
	}
	return longest
}

// Settled is how long lag must stay under the limit after a consumer fault
// for the consumer to count as recovered. The first sample under the limit
// is not enough: right after a broker restart the group has not resumed yet
// and reads as caught up, and the backlog shows a second later.
const Settled = 3 * time.Second

// lagReport measures one source, excluding consumer fault windows up to the
// moment lag recovers below limit: the first sample after the fault's end
// from which it stays below limit for Settled (or to the end of the samples,
// when fewer remain), a blind sample counting as not recovered (after a
// broker restart the sampler read 0 for three seconds while the group's
// backlog was in flight, then 2 s). How long that took is gated apart
// (consumer recovery).
func lagReport(src string, samples []LagSample, faults []Window, limit, maxRecovery time.Duration) LagReport {
	sort.Slice(samples, func(i, j int) bool { return samples[i].At.Before(samples[j].At) })
	r := LagReport{Source: src}
	type span struct{ from, to time.Time }
	var excluded []span
	for _, f := range faults {
		if !f.Consumer {
			continue
		}
		fr := FaultRecovery{Fault: f.Name, Recovery: -1, AfterEnd: -1}
		next := nextConsumerFault(faults, f)
		recovered := time.Time{}
		candidate := time.Time{} // first sample of the current run under the limit
		for _, s := range samples {
			if s.At.Before(f.Start) {
				continue
			}
			if !recovered.IsZero() {
				break
			}
			if next != nil && !s.At.Before(next.Start) && candidate.IsZero() && !next.Start.Before(f.End) && next.Start.Sub(f.End) < maxRecovery {
				// The next consumer fault began before lag came back:
				// what follows is its to recover.
				fr.InterruptedBy, fr.Interrupted = next.Name, next.Start.Sub(f.End)
				break
			}
			if s.Lag > fr.MaxLag {
				fr.MaxLag = s.Lag
			}
			switch {
			case s.At.Before(f.End):
			case s.Lag >= limit || s.Blind:
				candidate = time.Time{}
			case candidate.IsZero():
				candidate = s.At
			}
			if !candidate.IsZero() && s.At.Sub(candidate) >= Settled {
				recovered = candidate
			}
		}
		if recovered.IsZero() && !candidate.IsZero() {
			recovered = candidate // under the limit to the last sample
		}
		to := recovered
		switch {
		case fr.InterruptedBy != "":
			to = next.Start // its window is excluded from here on
		case recovered.IsZero():
			to = time.Unix(1<<40, 0) // never recovered: everything after is excluded and the window says so
		default:
			fr.Recovery = recovered.Sub(f.Start)
			fr.AfterEnd = recovered.Sub(f.End)
		}
		excluded = append(excluded, span{f.Start, to})
		r.Recovery = append(r.Recovery, fr)
	}
	var kept []time.Duration
	over := map[int64]bool{}
	for _, s := range samples {
		skip := false
		for _, e := range excluded {
			if !s.At.Before(e.from) && s.At.Before(e.to) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		kept = append(kept, s.Lag)
		if s.Lag >= limit {
			over[s.At.Unix()] = true
		}
		if s.Lag > r.Max {
			r.Max, r.MaxAt = s.Lag, s.At
		}
	}
	r.Samples = len(kept)
	r.P99 = stats.Summarise(kept).P99
	r.OverSeconds = len(over)
	return r
}

// nextConsumerFault is the first consumer fault to begin after f began, if any.
func nextConsumerFault(faults []Window, f Window) *Window {
	var next *Window
	for i, g := range faults {
		if g.Consumer && g.Start.After(f.Start) && (next == nil || g.Start.Before(next.Start)) {
			next = &faults[i]
		}
	}
	return next
}

// FaultContext places at among the harness's faults: "during NAME (Ns in)"
// when a fault was active, else the nearest fault start or end ("Ns after
// NAME ended", "Ns before NAME started"); "" with no faults. A failed lag
// gate says it beside its highest sample, so a run's failures can be read
// against the schedule without opening the report.
func FaultContext(faults []Window, at time.Time) string {
	secs := func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
	for _, f := range faults {
		if !at.Before(f.Start) && at.Before(f.End) {
			return fmt.Sprintf("during %s (%s in)", f.Name, secs(at.Sub(f.Start)))
		}
	}
	best, out := time.Duration(-1), ""
	for _, f := range faults {
		for _, b := range []struct {
			t    time.Time
			verb string
		}{{f.Start, "started"}, {f.End, "ended"}} {
			d := at.Sub(b.t)
			where := "after"
			if d < 0 {
				d, where = -d, "before"
			}
			if best < 0 || d < best {
				best, out = d, fmt.Sprintf("%s %s %s %s", secs(d), where, f.Name, b.verb)
			}
		}
	}
	return out
}

func firstReasons(vs []Verdict, class string, n int) string {
	var out []string
	for _, v := range vs {
		if v.Class == class && len(out) < n {
			out = append(out, v.OrderID+": "+strings.Join(v.Reasons, "; "))
		}
	}
	return strings.Join(out, "\n")
}

// Passed reports whether every gate passed.
func Passed(gates []Gate) bool {
	for _, g := range gates {
		if !g.Pass {
			return false
		}
	}
	return true
}
