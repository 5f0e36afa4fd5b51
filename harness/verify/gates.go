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
	MaxLag          time.Duration // consumer lag, max over the load phase outside consumer faults
	// MaxRecovery bounds, for each consumer fault, the time from the fault's
	// end (the component back) to lag under MaxLag again.
	MaxRecovery time.Duration
}

// DefaultLimits are the mission's targets.
var DefaultLimits = Limits{MaxCompensation: 30 * time.Second, MaxLag: 100 * time.Millisecond, MaxRecovery: 15 * time.Second}

// LagSample is one measurement of consumer lag in time.
type LagSample struct {
	At  time.Time     `json:"at"`
	Lag time.Duration `json:"lagNs"`
}

// Window is a declared fault. Consumer faults (a killed orchestrator member,
// a broker restart) are expected to raise lag: their windows, up to the
// moment lag recovers, are excluded from the lag gate and reported apart.
type Window struct {
	Name     string    `json:"name"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Consumer bool      `json:"consumer"`
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
	Source   string          `json:"source"`
	Samples  int             `json:"samples"`
	P99      time.Duration   `json:"p99Ns"`
	Max      time.Duration   `json:"maxNs"` // outside consumer fault windows
	MaxAt    time.Time       `json:"maxAt"`
	Recovery []FaultRecovery `json:"recovery,omitempty"`
}

// FaultRecovery is how a consumer fault window affected lag.
type FaultRecovery struct {
	Fault    string        `json:"fault"`
	MaxLag   time.Duration `json:"maxLagNs"`
	Recovery time.Duration `json:"recoveryNs"` // fault start -> lag back under the limit; -1 if never
	// AfterEnd is fault end (healed) -> lag back under the limit; -1 if never.
	AfterEnd time.Duration `json:"afterEndNs"`
}

// Input is everything the gates are evaluated on.
type Input struct {
	Verdicts   []Verdict
	Lag        map[string][]LagSample // by source
	Faults     []Window
	K6Passed   bool
	K6Failures []string // names of failed k6 thresholds
	Limits     Limits
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
	gates = append(gates, compensationGate(in))

	var reports []LagReport
	sources := make([]string, 0, len(in.Lag))
	for s := range in.Lag {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, src := range sources {
		r := lagReport(src, in.Lag[src], in.Faults, in.Limits.MaxLag)
		reports = append(reports, r)
		g := Gate{Name: "consumer lag (" + src + ")", Threshold: "max < " + in.Limits.MaxLag.String() + " outside consumer faults",
			Value: fmt.Sprintf("max %s, p99 %s over %d samples", r.Max.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Samples),
			Pass:  r.Samples > 0 && r.Max < in.Limits.MaxLag}
		if r.Samples == 0 {
			g.Detail = "no lag samples: the source measured nothing"
		} else if !g.Pass {
			g.Detail = "highest at " + r.MaxAt.Format(time.RFC3339Nano)
		}
		gates = append(gates, g)
		if in.Limits.MaxRecovery > 0 {
			gates = append(gates, recoveryGate(src, r, in.Limits))
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

func compensationGate(in Input) Gate {
	var times []time.Duration
	var slow []string
	for _, v := range in.Verdicts {
		if v.Class != ClassCompensated || v.CompensationTime == 0 {
			continue
		}
		times = append(times, v.CompensationTime)
		if v.CompensationTime >= in.Limits.MaxCompensation {
			slow = append(slow, v.OrderID)
		}
	}
	d := stats.Summarise(times)
	g := Gate{Name: "compensation time", Threshold: "p100 < " + in.Limits.MaxCompensation.String(),
		Value: fmt.Sprintf("n=%d p50=%s p99=%s max=%s", d.N, d.P50.Round(time.Millisecond), d.P99.Round(time.Millisecond), d.Max.Round(time.Millisecond)),
		Pass:  len(slow) == 0}
	sort.Strings(slow)
	if len(slow) > 20 {
		slow = slow[:20]
	}
	g.Orders = slow
	return g
}

// Settled is how long lag must stay under the limit after a consumer fault
// for the consumer to count as recovered. The first sample under the limit
// is not enough: right after a broker restart the group has not resumed yet
// and reads as caught up, and the backlog shows a second later.
const Settled = 3 * time.Second

// lagReport measures one source, excluding consumer fault windows up to the
// moment lag recovers below limit: the first sample after the fault's end
// from which it stays below limit for Settled (or to the end of the samples,
// when fewer remain). How long that took is gated apart (consumer recovery).
func lagReport(src string, samples []LagSample, faults []Window, limit time.Duration) LagReport {
	sort.Slice(samples, func(i, j int) bool { return samples[i].At.Before(samples[j].At) })
	r := LagReport{Source: src}
	type span struct{ from, to time.Time }
	var excluded []span
	for _, f := range faults {
		if !f.Consumer {
			continue
		}
		fr := FaultRecovery{Fault: f.Name, Recovery: -1, AfterEnd: -1}
		recovered := time.Time{}
		candidate := time.Time{} // first sample of the current run under the limit
		for _, s := range samples {
			if s.At.Before(f.Start) {
				continue
			}
			if !recovered.IsZero() {
				break
			}
			if s.Lag > fr.MaxLag {
				fr.MaxLag = s.Lag
			}
			switch {
			case s.At.Before(f.End):
			case s.Lag >= limit:
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
		if recovered.IsZero() {
			to = time.Unix(1<<40, 0) // never recovered: everything after is excluded and the window says so
		} else {
			fr.Recovery = recovered.Sub(f.Start)
			fr.AfterEnd = recovered.Sub(f.End)
		}
		excluded = append(excluded, span{f.Start, to})
		r.Recovery = append(r.Recovery, fr)
	}
	var kept []time.Duration
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
		if s.Lag > r.Max {
			r.Max, r.MaxAt = s.Lag, s.At
		}
	}
	r.Samples = len(kept)
	r.P99 = stats.Summarise(kept).P99
	return r
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
