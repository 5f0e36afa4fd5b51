package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestKillStopsAndBringsBack(t *testing.T) {
	fs := newFakeStack("worker-1")
	e, r := oneFault(Config{Stack: fs}, Spec{Name: "worker-kill", Kind: KindKill, Target: "worker-1", Duration: time.Millisecond})
	ctx := context.Background()
	if err := r.fault.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := r.fault.Inject(ctx); err != nil {
		t.Fatalf("inject: %v", err)
	}
	if fs.Pid("worker-1") != 0 || !e.broken["worker-1"] {
		t.Fatalf("after inject: pid %d, broken %v; want killed and marked broken", fs.Pid("worker-1"), e.broken)
	}
	if got := r.record(); got.Start.IsZero() || !strings.HasPrefix(got.Detail, "SIGKILL pid 100") {
		t.Errorf("record %+v: want started, detail SIGKILL pid 100", got)
	}
	if err := r.fault.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	want := []string{"kill worker-1 killed", "start worker-1"}
	if got := fs.Calls(); fmt.Sprint(got) != fmt.Sprint(want) || len(e.broken) != 0 {
		t.Errorf("calls %v, broken %v; want %v and nothing broken", got, e.broken, want)
	}
}

func TestInterruptedKillStillBringsTheComponentBack(t *testing.T) {
	fs := newFakeStack("worker-1")
	plan := []Planned{{Spec: Spec{Name: "worker-kill", Kind: KindKill, Target: "worker-1", Duration: time.Hour}}}
	e := New(Config{Stack: fs, Faults: plan})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.runFaults(ctx, time.Now()) }()
	deadline := time.Now().Add(5 * time.Second)
	for fs.Pid("worker-1") != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if fs.Pid("worker-1") != 0 {
		t.Fatalf("worker-1 was never killed; calls %v", fs.Calls())
	}
	cancel() // Ctrl-C during the hour the fault would last
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the fault did not end on cancel")
	}
	if fs.Pid("worker-1") == 0 {
		t.Errorf("worker-1 still down after an interrupted kill; calls %v", fs.Calls())
	}
	r := e.faultRecords()[0]
	if r.Start.IsZero() || r.End.IsZero() || r.Error != "" {
		t.Errorf("record %+v: want start and end, no error", r)
	}
	if len(e.broken) != 0 {
		t.Errorf("broken %v after the component came back, want none", e.broken)
	}
}

// A component restarted with run settings comes back with them.
func TestKillBringsBackWithTheRunSettings(t *testing.T) {
	fs := newFakeStack("payments")
	e, r := oneFault(Config{Stack: fs, ChargeLatency: 200 * time.Millisecond}, Spec{Name: "payments-kill", Kind: KindKill, Target: "payments"})
	if err := e.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := envString(e.modified["payments"]); got != EnvChargeLatency+"=200ms" {
		t.Fatalf("payments runs with %q, want %s=200ms", got, EnvChargeLatency)
	}
	if err := e.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fs.Calls(); fmt.Sprint(got) != "[restart payments]" {
		t.Errorf("calls %v, want one restart of payments", got)
	}
	fs.pids["payments"] = 0 // killed
	if err := r.fault.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs.Pid("payments") == 0 {
		t.Errorf("payments not brought back; calls %v", fs.Calls())
	}
}

func TestKillPrepareLeavesOthersAlone(t *testing.T) {
	for _, tt := range []struct {
		name    string
		target  string
		latency time.Duration
	}{
		{"ok/not payments", "worker-1", 200 * time.Millisecond},
		{"ok/no charge latency", "payments", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeStack("payments", "worker-1")
			e, _ := oneFault(Config{Stack: fs, ChargeLatency: tt.latency}, Spec{Name: "k", Kind: KindKill, Target: tt.target})
			if err := e.prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			if calls := fs.Calls(); len(calls) != 0 || len(e.modified) != 0 {
				t.Errorf("calls %v, modified %v; want nothing restarted", calls, e.modified)
			}
		})
	}
}
