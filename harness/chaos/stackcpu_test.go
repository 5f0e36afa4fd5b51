package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCPUDelta(t *testing.T) {
	prev := map[string]procMark{"kafka": {10, 2 * time.Second}, "payments": {20, time.Second}, "temporal": {30, 5 * time.Second}}
	cur := map[string]procMark{
		"kafka":    {10, 2*time.Second + 600*time.Millisecond}, // 0.6 cores
		"payments": {21, 100 * time.Millisecond},               // restarted: a new pid, left out
		"temporal": {30, 5*time.Second + 400*time.Millisecond}, // 0.4 cores
		"orders":   {40, time.Second},                          // not there before: left out
	}
	row := cpuDelta(prev, cur, 10*time.Second, 11500*time.Millisecond, time.Second)
	if len(row.Components) != 2 || !near(row.Components["kafka"], 0.6) || !near(row.Components["temporal"], 0.4) {
		t.Errorf("components = %v, want kafka 0.6 and temporal 0.4 only", row.Components)
	}
	if !near(row.Stack, 1.0) || !near(row.Host, 1.5) {
		t.Errorf("stack %.3f host %.3f, want 1.0 and 1.5", row.Stack, row.Host)
	}
	if row := cpuDelta(nil, cur, 0, time.Second, time.Second); row.Components != nil {
		t.Errorf("no first reading: got %+v, want no row", row)
	}
	if row := cpuDelta(prev, cur, -1, -1, time.Second); row.Host != 0 || row.Components == nil {
		t.Errorf("no /proc/stat: got %+v, want the components and no host figure", row)
	}
}

func TestCPUSummary(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 6, 3, 0, 0, time.UTC)
	var rows []cpuRow
	for i := range 30 {
		comp := map[string]float64{"kafka": 0.4, "temporal": 0.3, "postgres": 0.2, "orders": 0.1}
		if i >= 10 && i < 20 { // the busy ten seconds
			comp = map[string]float64{"kafka": 0.8, "temporal": 0.6, "postgres": 0.3, "orders": 0.2}
		}
		var sum float64
		for _, c := range comp {
			sum += c
		}
		rows = append(rows, cpuRow{At: t0.Add(time.Duration(i) * time.Second), Stack: sum, Host: sum + 0.1, Components: comp,
			Others: map[string]float64{"k6": 0.06, "harness": 0.03}})
	}
	// A row outside the load is not counted.
	rows = append(rows, cpuRow{At: t0.Add(time.Hour), Stack: 9, Host: 9, Components: map[string]float64{"kafka": 9}})

	got := cpuSummary(rows, t0, t0.Add(29*time.Second), 10*time.Second, 2)
	want := "stack 1.30 cores mean over the load, 1.90 in the busiest 10s (from 06:03:10: kafka 0.80, temporal 0.60, postgres 0.30); host busy 1.40 cores mean, harness 0.03, k6 0.06, of 2"
	if got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
	if got := cpuSummary(rows, t0.Add(-time.Hour), t0.Add(-time.Minute), 10*time.Second, 2); got != "" {
		t.Errorf("no row in the window: got %q, want empty", got)
	}
}

// TestCPUMeterSeesABusyProcess runs the meter on this test process while it
// spins: the samples name it and add its CPU into the stack's.
func TestCPUMeterSeesABusyProcess(t *testing.T) {
	st := newFakeStack()
	st.pids["self"] = os.Getpid()
	st.pids["gone"] = 0 // not running: never sampled
	var out bytes.Buffer
	m := &cpuMeter{stack: st, out: &out, every: 100 * time.Millisecond,
		others: func() map[string]int { return map[string]int{"harness": os.Getpid()} }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()
	for ctx.Err() == nil { // spin
	}
	<-done
	rows := m.samples()
	if len(rows) < 3 {
		t.Fatalf("%d samples in 1 s at 100 ms, want several", len(rows))
	}
	var self, harness float64
	for _, r := range rows {
		harness += r.Others["harness"]
		if _, ok := r.Components["gone"]; ok {
			t.Errorf("a component that is not running was sampled: %+v", r)
		}
		self += r.Components["self"]
		if !near(r.Stack, r.Components["self"]) {
			t.Errorf("stack %.3f != its only component %.3f", r.Stack, r.Components["self"])
		}
	}
	if self <= 0 || harness <= 0 {
		t.Errorf("the spinning process used no CPU in %d samples (as a component %.3f, beside the stack %.3f)", len(rows), self, harness)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("%d lines written for %d samples", len(lines), len(rows))
	}
	var row cpuRow
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || row.At.IsZero() {
		t.Errorf("first line %q: %v", lines[0], err)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
