package chaos

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

func TestRollbackHealsAndRestoresEverything(t *testing.T) {
	api, _ := realToxiproxy(t)
	fs := newFakeStack("payments", "worker-1", "kafka")
	plan := []Planned{
		{Spec: Spec{Name: "x", Kind: KindLatency, Target: "payments", Latency: time.Second}},
		{Spec: Spec{Name: "y", Kind: KindDisable, Target: "payments"}},
	}
	e := New(Config{ToxiproxyAddr: api, Stack: fs, Faults: plan})
	// A run that crashed mid-fault: toxics on the proxy, a component it
	// stopped, another it restarted with run-only settings.
	for _, r := range e.faults {
		if err := r.fault.Inject(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	fs.Kill("kafka", syscall.SIGTERM)
	e.broken["kafka"] = true
	e.modified["payments"] = map[string]string{EnvChargeLatency: "200ms"}

	done := e.rollback()
	if err := e.toxics.Check("payments"); err != nil {
		t.Errorf("after rollback the proxy is not clean: %v", err)
	}
	if fs.Pid("kafka") == 0 {
		t.Errorf("after rollback kafka is still down; calls %v", fs.Calls())
	}
	want := []string{"kill kafka terminated", "start kafka", "restart payments"}
	if got := fs.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if len(done) != 4 {
		t.Errorf("rollback reported %v, want 2 heals, a start and a restart", done)
	}
}
