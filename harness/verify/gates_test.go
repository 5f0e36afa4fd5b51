package verify

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func steadyLag(n int, lag time.Duration) []LagSample {
	var out []LagSample
	for i := 0; i < n; i++ {
		out = append(out, LagSample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Lag: lag})
	}
	return out
}

func gate(t *testing.T, gates []Gate, prefix string) Gate {
	t.Helper()
	for _, g := range gates {
		if strings.HasPrefix(g.Name, prefix) {
			return g
		}
	}
	t.Fatalf("no gate %q in %+v", prefix, gates)
	return Gate{}
}

func passingInput() Input {
	return Input{
		Verdicts: []Verdict{
			{OrderID: "a", Class: ClassOK},
			{OrderID: "b", Class: ClassCompensated, Compensated: true, CompensationTime: 2 * time.Second},
			{OrderID: "c", Class: ClassUnacked},
		},
		Lag:      map[string][]LagSample{"orchestrator": steadyLag(100, 20*time.Millisecond), "kadm": steadyLag(100, 30*time.Millisecond)},
		K6Passed: true,
		Limits:   DefaultLimits,
	}
}

func TestGatesPass(t *testing.T) {
	gates, _ := Evaluate(passingInput())
	for _, g := range gates {
		if !g.Pass {
			t.Errorf("gate %s failed: %s %s", g.Name, g.Value, g.Detail)
		}
	}
	if !Passed(gates) {
		t.Fatal("Passed = false for a clean run")
	}
}

func TestGatesFail(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(in *Input)
		gate       string
		wantOrders []string
	}{
		{"err/a lost order", func(in *Input) {
			in.Verdicts = append(in.Verdicts, Verdict{OrderID: "lost-1", Class: ClassLost, Reasons: []string{"no workflow"}})
		}, "lost", []string{"lost-1"}},
		{"err/a double capture", func(in *Input) {
			in.Verdicts = append(in.Verdicts, Verdict{OrderID: "dup-1", Class: ClassDuplicated, Reasons: []string{"2 captured charges"}})
		}, "duplicated", []string{"dup-1"}},
		{"err/a leaked reservation", func(in *Input) {
			in.Verdicts = append(in.Verdicts, Verdict{OrderID: "leak-1", Class: ClassInconsistent, Reasons: []string{"leaked reservation r"}})
		}, "inconsistent", []string{"leak-1"}},
		{"err/a late compensation", func(in *Input) {
			in.Verdicts = append(in.Verdicts, Verdict{OrderID: "late-1", Class: ClassCompensated, Compensated: true, CompensationTime: 31 * time.Second})
		}, "compensation", []string{"late-1"}},
		{"err/a lag spike outside fault windows", func(in *Input) {
			in.Lag["kadm"][50].Lag = 400 * time.Millisecond
		}, "consumer lag (kadm)", nil},
		{"err/a lag source that measured nothing", func(in *Input) {
			in.Lag["orchestrator"] = nil
		}, "consumer lag (orchestrator)", nil},
		{"err/k6 thresholds", func(in *Input) {
			in.K6Passed, in.K6Failures = false, []string{"dropped_iterations"}
		}, "k6", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := passingInput()
			tt.mutate(&in)
			gates, _ := Evaluate(in)
			g := gate(t, gates, tt.gate)
			if g.Pass {
				t.Fatalf("gate %s passed: %s", g.Name, g.Value)
			}
			if Passed(gates) {
				t.Fatal("Passed = true with a failing gate")
			}
			if strings.Join(g.Orders, ",") != strings.Join(tt.wantOrders, ",") {
				t.Fatalf("gate names orders %v, want %v", g.Orders, tt.wantOrders)
			}
		})
	}
}

func TestLagSpikeInsideConsumerFaultIsReportedApart(t *testing.T) {
	in := passingInput()
	samples := steadyLag(100, 20*time.Millisecond)
	for i := 40; i < 60; i++ { // the fault: 40..50, recovery by 60
		samples[i].Lag = 3 * time.Second
	}
	in.Lag["kadm"] = samples
	in.Faults = []Window{{Name: "kill orchestrator-2", Start: t0.Add(4 * time.Second), End: t0.Add(5 * time.Second), Consumer: true}}
	gates, reports := Evaluate(in)
	if g := gate(t, gates, "consumer lag (kadm)"); !g.Pass {
		t.Fatalf("lag gate failed on a declared consumer fault: %s", g.Value)
	}
	var r LagReport
	for _, rep := range reports {
		if rep.Source == "kadm" {
			r = rep
		}
	}
	if len(r.Recovery) != 1 || r.Recovery[0].MaxLag != 3*time.Second || r.Recovery[0].Recovery != 2*time.Second {
		t.Fatalf("recovery = %+v, want max 3s recovered 2s after the fault started", r.Recovery)
	}

	// The same spike in a non-consumer fault window (e.g. a payments outage) counts.
	in.Faults[0].Consumer = false
	gates, _ = Evaluate(in)
	if g := gate(t, gates, "consumer lag (kadm)"); g.Pass {
		t.Fatal("lag gate excluded a spike during a fault that is not a consumer fault")
	}
}

func TestConsumerRecoveryGate(t *testing.T) {
	fault := Window{Name: "kill orchestrator-2", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), Consumer: true}
	lagged := func(until int) []LagSample { // 100 ms samples; 3 s of lag from sample 20 to until
		s := steadyLag(400, 20*time.Millisecond)
		for i := 20; i < until && i < len(s); i++ {
			s[i].Lag = 3 * time.Second
		}
		return s
	}
	tests := []struct {
		name    string
		samples []LagSample
		faults  []Window
		pass    bool
		value   string
	}{
		{"ok/no consumer faults", steadyLag(100, 20*time.Millisecond), nil, true, "no consumer faults in the run"},
		{"ok/back 2 s after the end", lagged(50), []Window{fault}, true, "kill orchestrator-2 2s"},
		{"err/back 20 s after the end", lagged(230), []Window{fault}, false, "kill orchestrator-2 20s"},
		{"err/never back", lagged(400), []Window{fault}, false, "kill orchestrator-2 never recovered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := passingInput()
			in.Lag = map[string][]LagSample{"kadm": tt.samples}
			in.Faults = tt.faults
			gates, _ := Evaluate(in)
			g := gate(t, gates, "consumer recovery (kadm)")
			if g.Pass != tt.pass || g.Value != tt.value {
				t.Fatalf("gate = pass %v, value %q (%s); want pass %v, value %q", g.Pass, g.Value, g.Detail, tt.pass, tt.value)
			}
			if !tt.pass && Passed(gates) {
				t.Fatal("Passed = true with a failing recovery gate")
			}
		})
	}
}

// Right after a broker restart the group reads as caught up for a moment,
// then the backlog shows: recovery is when lag stays under the limit, not
// the first sample under it, and the bounce belongs to the fault.
func TestRecoveryNeedsLagToStayDown(t *testing.T) {
	in := passingInput()
	s := steadyLag(100, 20*time.Millisecond) // 0..10 s
	for i := 20; i < 30; i++ {               // the fault, 2..3 s
		s[i].Lag = time.Second
	}
	for i := 35; i < 50; i++ { // a bounce 3.5..5 s, after 0.5 s that look caught up
		s[i].Lag = 2 * time.Second
	}
	in.Lag = map[string][]LagSample{"kadm": s}
	in.Faults = []Window{{Name: "kafka-restart", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), Consumer: true}}
	gates, reports := Evaluate(in)
	if g := gate(t, gates, "consumer lag (kadm)"); !g.Pass {
		t.Fatalf("the bounce right after the fault counted as lag outside it: %s", g.Value)
	}
	r := reports[0]
	if len(r.Recovery) != 1 || r.Recovery[0].AfterEnd != 2*time.Second || r.Recovery[0].MaxLag != 2*time.Second {
		t.Fatalf("recovery = %+v, want back 2 s after the end (at 5 s), max 2 s", r.Recovery)
	}
	// A spike well after the consumer settled is lag again.
	in.Lag["kadm"][90].Lag = 400 * time.Millisecond
	gates, _ = Evaluate(in)
	if g := gate(t, gates, "consumer lag (kadm)"); g.Pass {
		t.Fatal("a spike 4 s after recovery was excluded")
	}
}

// After a broker restart the sampler's tail reconnects later than the
// group: samples whose commit is past what the tail has read read 0 while
// the backlog is in flight. They never count as recovered.
func TestBlindSamplesAreNotRecovery(t *testing.T) {
	in := passingInput()
	s := steadyLag(100, 20*time.Millisecond) // 0..10 s
	for i := 20; i < 30; i++ {               // the fault, 2..3 s
		s[i].Lag = time.Second
	}
	for i := 30; i < 65; i++ { // 3..6.5 s: blind, reading 0
		s[i].Lag, s[i].Blind = 0, true
	}
	for i := 65; i < 70; i++ { // then the backlog shows
		s[i].Lag = 2 * time.Second
	}
	in.Lag = map[string][]LagSample{"kadm": s}
	in.Faults = []Window{{Name: "kafka-restart", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), Consumer: true}}
	gates, reports := Evaluate(in)
	if g := gate(t, gates, "consumer lag (kadm)"); !g.Pass {
		t.Fatalf("the backlog after blind samples counted as lag outside the fault: %s", g.Value)
	}
	if r := reports[0].Recovery; len(r) != 1 || r[0].AfterEnd != 4*time.Second {
		t.Fatalf("recovery = %+v, want back 4 s after the end (at 7 s), not at its end", r)
	}
	// Blind for longer than the recovery limit: not recovered in time.
	for i := 30; i < 100; i++ {
		s[i].Lag, s[i].Blind = 0, true
	}
	in.Limits.MaxRecovery = 5 * time.Second
	gates, _ = Evaluate(in)
	if g := gate(t, gates, "consumer recovery (kadm)"); g.Pass {
		t.Fatalf("blind to the end passed the recovery gate: %s", g.Value)
	}
}

// A consumer fault that begins before the lag of the one before it came
// back takes over its recovery; one that begins after the first had its
// whole recovery limit does not excuse it.
func TestRecoveryInterruptedByTheNextConsumerFault(t *testing.T) {
	kafka := Window{Name: "kafka-restart", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), Consumer: true}
	temporal := Window{Name: "temporal-restart", Start: t0.Add(5 * time.Second), End: t0.Add(6 * time.Second), Consumer: true}
	in := passingInput()
	s := steadyLag(200, 20*time.Millisecond) // 0..20 s
	for i := 20; i < 80; i++ {               // lagging from 2 s to 8 s
		s[i].Lag = time.Second
	}
	in.Lag = map[string][]LagSample{"kadm": s}
	in.Faults = []Window{kafka, temporal}
	gates, reports := Evaluate(in)
	g := gate(t, gates, "consumer recovery (kadm)")
	if want := "kafka-restart not back when temporal-restart began 2s after its end, temporal-restart 2s"; !g.Pass || g.Value != want {
		t.Fatalf("recovery gate = pass %v, %q; want pass, %q", g.Pass, g.Value, want)
	}
	if g := gate(t, gates, "consumer lag (kadm)"); !g.Pass {
		t.Fatalf("lag between the two faults counted: %s", g.Value)
	}
	if r := reports[0].Recovery[0]; r.InterruptedBy != "temporal-restart" || r.AfterEnd != -1 {
		t.Fatalf("kafka-restart recovery = %+v", r)
	}

	// A fault that begins before this one ends overlaps it: no hand-over.
	overlap := Window{Name: "temporal-restart", Start: t0.Add(2500 * time.Millisecond), End: t0.Add(3500 * time.Millisecond), Consumer: true}
	in.Faults = []Window{kafka, overlap}
	_, reports = Evaluate(in)
	if r := reports[0].Recovery[0]; r.InterruptedBy != "" || r.AfterEnd != 5*time.Second {
		t.Fatalf("kafka-restart with an overlapping fault: %+v, want recovered 5 s after its end", r)
	}

	// The next fault 16 s after the end, the lag never back before it.
	temporal.Start, temporal.End = t0.Add(19*time.Second), t0.Add(19500*time.Millisecond)
	for i := 80; i < 200; i++ {
		s[i].Lag = time.Second
	}
	in.Faults = []Window{kafka, temporal}
	gates, _ = Evaluate(in)
	if g := gate(t, gates, "consumer recovery (kadm)"); g.Pass {
		t.Fatalf("a fault with its whole recovery limit behind it was excused: %s", g.Value)
	}
}

// The compensation gate's edges: n=0 passes only when the ledger expected
// no compensation; the limit itself fails; an unmeasured one fails.
func TestCompensationGateEdges(t *testing.T) {
	comp := func(d time.Duration) Verdict {
		return Verdict{OrderID: "c", Class: ClassCompensated, Compensated: true, CompensationTime: d}
	}
	for _, tc := range []struct {
		name     string
		verdicts []Verdict
		expected int
		pass     bool
		detail   string
	}{
		{"ok/none expected, none measured", nil, 0, true, ""},
		{"err/n=0 where the ledger expects some", []Verdict{{OrderID: "x", Class: ClassCompensated}}, 3, false, "no compensation measured, though 3 orders"},
		{"ok/just under the limit", []Verdict{comp(30*time.Second - time.Millisecond)}, 1, true, ""},
		{"err/at the limit", []Verdict{comp(30 * time.Second)}, 1, false, "took 30s or more"},
		{"err/unmeasured", []Verdict{comp(time.Second), {OrderID: "u", Class: ClassCompensated, Unmeasured: "no failed step in its history"}}, 1, false, "unmeasured: u: no failed step"},
		{"err/an undone order's time counts whatever its class", []Verdict{comp(time.Second), {OrderID: "i", Class: ClassInconsistent, Compensated: true, CompensationTime: time.Hour}}, 1, false, "1 compensations took"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := passingInput()
			in.Verdicts, in.ExpectCompensations = tc.verdicts, tc.expected
			g := gate(t, mustEvaluate(in), "compensation time")
			if g.Pass != tc.pass || !strings.Contains(g.Detail, tc.detail) {
				t.Fatalf("gate pass %v (%s; %s), want %v with %q", g.Pass, g.Value, g.Detail, tc.pass, tc.detail)
			}
		})
	}
}

func mustEvaluate(in Input) []Gate {
	g, _ := Evaluate(in)
	return g
}

func TestOrphanGate(t *testing.T) {
	orphan := []Orphan{{Kind: "charge", ID: "ch-9 (order x)"}}
	for _, tc := range []struct {
		name    string
		orphans []Orphan
		gated   bool
		pass    bool
	}{
		{"ok/none", nil, true, true},
		{"err/an orphan charge on a stack nobody else used", orphan, true, false},
		{"ok/reported, not gated, on a shared stack", orphan, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := passingInput()
			in.Orphans, in.OrphansGated = tc.orphans, tc.gated
			g := gate(t, mustEvaluate(in), "orphans")
			if g.Pass != tc.pass || (len(tc.orphans) > 0 && !strings.Contains(g.Detail, "charge ch-9")) {
				t.Fatalf("gate pass %v (%s; %s), want %v naming the orphan", g.Pass, g.Value, g.Detail, tc.pass)
			}
		})
	}
}

func TestLedgerGate(t *testing.T) {
	in := passingInput()
	in.Ledger = &LedgerCheck{Ledger: map[string]int{OutcomeAcked: 100, OutcomeUnknown: 1}, K6: map[string]int{OutcomeAcked: 101, OutcomeUnknown: 1}}
	if g := gate(t, mustEvaluate(in), "ledger complete"); g.Pass || !strings.Contains(g.Detail, "acked: the ledger has 100, k6 counted 101") {
		t.Fatalf("a placement k6 counted and the ledger missed: gate pass %v (%s)", g.Pass, g.Detail)
	}
	in.Ledger.K6[OutcomeAcked] = 100
	if g := gate(t, mustEvaluate(in), "ledger complete"); !g.Pass {
		t.Fatalf("matching counts: gate failed: %s", g.Detail)
	}
	in.Ledger.Err = "k6's summary: no such file"
	if g := gate(t, mustEvaluate(in), "ledger complete"); g.Pass {
		t.Fatal("unreadable k6 counters: gate passed")
	}
}

// Rejected and unacknowledged placements: at most 0.1% outside fault
// windows, each window the fault plus the stated margin.
func TestIntakeGateEdges(t *testing.T) {
	l := DefaultLimits
	mk := func(n, failed int, at func(i int) time.Time) []Attempt {
		var out []Attempt
		for i := 0; i < n; i++ {
			a := Attempt{LedgerLine: LedgerLine{Outcome: OutcomeAcked}, SentAt: at(i)}
			if i < failed {
				a.Outcome, a.Code = OutcomeUnknown, 503
			}
			out = append(out, a)
		}
		return out
	}
	spread := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	fault := []Window{{Name: "payments-refused", Start: t0, End: t0.Add(10 * time.Second)}}
	for _, tc := range []struct {
		name     string
		attempts []Attempt
		faults   []Window
		pass     bool
	}{
		{"ok/1 in 1000 is the limit", mk(1000, 1, func(i int) time.Time { return t0.Add(time.Hour + time.Duration(i)*time.Millisecond) }), nil, true},
		{"err/2 in 1000", mk(1000, 2, func(i int) time.Time { return t0.Add(time.Hour + time.Duration(i)*time.Millisecond) }), nil, false},
		{"ok/inside the fault and its margin", mk(1000, 15, spread), fault, true},
		{"err/just after the margin", append(mk(1000, 0, func(i int) time.Time { return t0.Add(time.Hour) }),
			mk(2, 2, func(int) time.Time { return t0.Add(10*time.Second + l.IntakeMargin) })...), fault, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := IntakeGate(tc.attempts, tc.faults, l)
			if g.Pass != tc.pass {
				t.Fatalf("gate pass %v (%s), want %v", g.Pass, g.Value, tc.pass)
			}
		})
	}
}

// A failed sample is a gap that is reported; a long one outside consumer
// faults fails the lag gate (lag nobody measured), one inside does not.
func TestLagGaps(t *testing.T) {
	gap := Gap{From: t0.Add(2 * time.Second), To: t0.Add(5 * time.Second), Reason: "i/o timeout"}
	for _, tc := range []struct {
		name   string
		gaps   []Gap
		faults []Window
		pass   bool
	}{
		{"ok/a short gap is reported", []Gap{{From: t0, To: t0.Add(300 * time.Millisecond), Reason: "i/o timeout"}}, nil, true},
		{"err/3 s unmeasured", []Gap{gap}, nil, false},
		{"ok/3 s inside a consumer fault", []Gap{gap}, []Window{{Name: "kafka-restart", Start: t0.Add(time.Second), End: t0.Add(4 * time.Second), Consumer: true}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := passingInput()
			in.Gaps, in.Faults = map[string][]Gap{"kadm": tc.gaps}, tc.faults
			gates, reports := Evaluate(in)
			g := gate(t, gates, "consumer lag (kadm)")
			if g.Pass != tc.pass || !strings.Contains(g.Detail, "i/o timeout") {
				t.Fatalf("gate pass %v (%s; %s), want %v with the gap reported", g.Pass, g.Value, g.Detail, tc.pass)
			}
			for _, r := range reports {
				if r.Source == "kadm" && len(r.Gaps) != 1 {
					t.Fatalf("report gaps %v, want the gap kept", r.Gaps)
				}
			}
		})
	}
}

// Lag after the load, until settled, is gated like the rest and reported apart.
func TestLagAfterTheLoad(t *testing.T) {
	in := passingInput()
	in.LoadEnd = t0.Add(8 * time.Second)
	in.Lag["kadm"][95].Lag = 300 * time.Millisecond // at 9.5 s: settling
	gates, reports := Evaluate(in)
	if g := gate(t, gates, "consumer lag (kadm)"); g.Pass {
		t.Fatal("lag while settling passed")
	}
	for _, r := range reports {
		if r.Source == "kadm" && r.AfterLoad != 300*time.Millisecond {
			t.Fatalf("after the load %s, want 300ms", r.AfterLoad)
		}
	}
}

func TestFaultContext(t *testing.T) {
	faults := []Window{
		{Name: "payments-hang", Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second)},
		{Name: "payments-latency", Start: t0.Add(26 * time.Second), End: t0.Add(46 * time.Second)},
	}
	tests := []struct {
		at   time.Duration
		want string
	}{
		{12 * time.Second, "during payments-hang (2s in)"},
		{26 * time.Second, "during payments-latency (0s in)"},
		{21*time.Second + 400*time.Millisecond, "1.4s after payments-hang ended"},
		{24 * time.Second, "2s before payments-latency started"},
		{time.Second, "9s before payments-hang started"},
		{50 * time.Second, "4s after payments-latency ended"},
	}
	for _, tt := range tests {
		if got := FaultContext(faults, t0.Add(tt.at)); got != tt.want {
			t.Errorf("FaultContext(+%s) = %q, want %q", tt.at, got, tt.want)
		}
	}
	if got := FaultContext(nil, t0); got != "" {
		t.Errorf("FaultContext with no faults = %q, want empty", got)
	}
}

// A failed lag gate says where its highest sample fell among the faults and
// whether it was one spike or a band of seconds over the limit.
func TestLagGateNamesTheFaultAndCountsSecondsOver(t *testing.T) {
	in := passingInput()
	samples := steadyLag(100, 20*time.Millisecond) // 10 s at 10 Hz
	samples[31].Lag = 150 * time.Millisecond       // 3.1 s
	samples[35].Lag = 100 * time.Millisecond       // 3.5 s: at the limit counts
	samples[72].Lag = 300 * time.Millisecond       // 7.2 s: the highest
	in.Lag["kadm"] = samples
	in.Faults = []Window{{Name: "payments-latency", Start: t0.Add(7 * time.Second), End: t0.Add(9 * time.Second), Target: "payments"}}
	gates, reports := Evaluate(in)
	g := gate(t, gates, "consumer lag (kadm)")
	if g.Pass {
		t.Fatalf("lag gate passed with a 300 ms sample: %s", g.Value)
	}
	if !strings.Contains(g.Detail, "during payments-latency (200ms in)") || !strings.Contains(g.Detail, "in 2 distinct second(s)") {
		t.Fatalf("detail = %q, want the fault it fell in and 2 seconds over", g.Detail)
	}
	for _, r := range reports {
		if r.Source == "kadm" && r.OverSeconds != 2 {
			t.Fatalf("OverSeconds = %d, want 2", r.OverSeconds)
		}
	}
}
