package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/stack"
)

// fakeStack records what the experiment does to components.
type fakeStack struct {
	mu    sync.Mutex
	pids  map[string]int
	calls []string
	// restarted, when set, is the pid a restarted component ends with (0:
	// it died at once); 998 otherwise.
	restarted func(name string) int
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
	if f.restarted != nil {
		f.pids[name] = f.restarted(name)
	}
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

// oneFault returns an experiment planning spec alone (at once) on cfg, and
// its run.
func oneFault(cfg Config, spec Spec) (*Experiment, *faultRun) {
	cfg.Faults = []Planned{{Spec: spec}}
	e := New(cfg)
	return e, e.faults[0]
}

// record is the fault's record as the report will see it.
func (r *faultRun) record() report.FaultRecord {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return *r.rec
}

func TestNetworkFaultWindowIsRecorded(t *testing.T) {
	api, url := realToxiproxy(t)
	plan := []Planned{{Spec: Spec{Name: "payments-refused", Kind: KindDisable, Target: "payments", Duration: 300 * time.Millisecond}, At: 50 * time.Millisecond}}
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

func TestRunRecordsWhatWentWrong(t *testing.T) {
	api, _ := realToxiproxy(t)
	tests := []struct {
		name      string
		spec      Spec
		wantError string
	}{
		{"err/unknown kind", Spec{Name: "x", Kind: "flood", Target: "payments"}, "unknown fault kind flood"},
		{"err/inject broke nothing", Spec{Name: "x", Kind: KindDisable, Target: "nope"}, "toxiproxy: proxy nope"},
		{"err/kill of a stopped component", Spec{Name: "x", Kind: KindKill, Target: "gone"}, "gone is not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeStack("payments")
			_, r := oneFault(Config{ToxiproxyAddr: api, Stack: fs}, tt.spec)
			r.run(context.Background())
			got := r.record()
			if !strings.Contains(got.Error, tt.wantError) || !got.Start.IsZero() || !got.End.IsZero() {
				t.Errorf("record %+v: want error %q, never started", got, tt.wantError)
			}
			if calls := fs.Calls(); len(calls) != 0 {
				t.Errorf("the stack was touched: %v", calls)
			}
		})
	}
}

func TestCheckTargetsNamesWhatIsMissing(t *testing.T) {
	api, _ := realToxiproxy(t)
	plan := []Planned{
		{Spec: Spec{Name: "net-ok", Kind: KindLatency, Target: "payments"}},
		{Spec: Spec{Name: "net-bad", Kind: KindDisable, Target: "shipping"}},
		{Spec: Spec{Name: "kill-ok", Kind: KindKill, Target: "worker-1"}},
		{Spec: Spec{Name: "kill-absent", Kind: KindKill, Target: "kafka"}},
		{Spec: Spec{Name: "restart-external", Kind: KindRestart, Target: "redis"}},
		{Spec: Spec{Name: "poison", Kind: KindPoison, Target: "orders"}},
	}
	fs := newFakeStack("payments", "worker-1", "redis")
	fs.pids["redis"] = 0 // external: the stack does not run it
	err := New(Config{ToxiproxyAddr: api, Stack: fs, Faults: plan}).checkTargets(context.Background())
	if err == nil {
		t.Fatal("got nil, want the missing targets named")
	}
	want := []string{
		"net-bad: toxiproxy: proxy shipping",
		"net-bad: component shipping is not in the stack",
		"kill-absent: component kafka is not in the stack (have: payments, redis, worker-1)",
		"restart-external: component redis is not running (external or stopped)",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	for _, ok := range []string{"net-ok", "kill-ok", "poison"} {
		if strings.Contains(err.Error(), ok+":") {
			t.Errorf("error %q names %s, which can run", err, ok)
		}
	}
}
