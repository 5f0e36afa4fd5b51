package chaos

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/harness/stack"
)

// fakeStack records what the experiment does to components.
type fakeStack struct {
	mu    sync.Mutex
	pids  map[string]int
	calls []string
}

var _ Stack = (*fakeStack)(nil)

func newFakeStack(names ...string) *fakeStack {
	f := &fakeStack{pids: map[string]int{}}
	for i, n := range names {
		f.pids[n] = 100 + i
	}
	return f
}

func (f *fakeStack) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.pids {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *fakeStack) Status(context.Context) []stack.State { return nil }

func (f *fakeStack) Kill(name string, sig syscall.Signal) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pid := f.pids[name]
	if pid == 0 {
		return 0, fmt.Errorf("%s is not running", name)
	}
	f.pids[name] = 0
	f.calls = append(f.calls, fmt.Sprintf("kill %s %s", name, sig))
	return pid, nil
}

func (f *fakeStack) Start(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pids[name] = 999
	f.calls = append(f.calls, "start "+name)
	return nil
}

func (f *fakeStack) Restart(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pids[name] = 998
	f.calls = append(f.calls, "restart "+name)
	return nil
}

func (f *fakeStack) Pid(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pids[name]
}

func (f *fakeStack) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func TestRollbackHealsAndRestoresEverything(t *testing.T) {
	api, _ := realToxiproxy(t)
	fs := newFakeStack("payments", "worker-1", "kafka")
	e := New(Config{ToxiproxyAddr: api, Stack: fs})
	// A run that crashed mid-fault: toxics on the proxy, a component it
	// stopped, another it restarted with run-only settings.
	tx := NewToxics(api)
	if err := tx.Inject(Fault{Name: "x", Kind: KindLatency, Target: "payments", Latency: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Inject(Fault{Name: "y", Kind: KindDisable, Target: "payments"}); err != nil {
		t.Fatal(err)
	}
	fs.Kill("kafka", syscall.SIGTERM)
	e.broken["kafka"] = true
	e.modified["payments"] = EnvChargeLatency + "=200ms"

	done := e.rollback()
	if err := tx.Check("payments"); err != nil {
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

func TestInterruptedKillStillBringsTheComponentBack(t *testing.T) {
	api, _ := realToxiproxy(t)
	fs := newFakeStack("worker-1")
	plan := []Planned{{Fault: Fault{Name: "worker-kill", Kind: KindKill, Target: "worker-1", Duration: time.Hour}}}
	e := New(Config{ToxiproxyAddr: api, Stack: fs, Faults: plan})
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

func TestNetworkFaultWindowIsRecorded(t *testing.T) {
	api, url := realToxiproxy(t)
	plan := []Planned{{Fault: Fault{Name: "payments-refused", Kind: KindDisable, Target: "payments", Duration: 300 * time.Millisecond}, At: 50 * time.Millisecond}}
	e := New(Config{ToxiproxyAddr: api, Stack: newFakeStack("payments"), Faults: plan})
	start := time.Now()
	e.runFaults(context.Background(), start)
	r := e.faultRecords()[0]
	if r.Start.Sub(start) < 50*time.Millisecond || r.End.Sub(r.Start) < 300*time.Millisecond || r.Error != "" {
		t.Errorf("record %+v: want start at +50ms and 300ms long", r)
	}
	if body, _, err := get(url, time.Second); err != nil || body != "ok" {
		t.Errorf("after the fault: got %q, %v; want ok", body, err)
	}
	w := e.windows(time.Now())
	if len(w) != 1 || w[0].Consumer || !w[0].Start.Equal(r.Start) {
		t.Errorf("windows %+v", w)
	}
}
