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
			{OrderID: "b", Class: ClassCompensated, CompensationTime: 2 * time.Second},
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
			in.Verdicts = append(in.Verdicts, Verdict{OrderID: "late-1", Class: ClassCompensated, CompensationTime: 31 * time.Second})
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
