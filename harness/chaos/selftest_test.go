package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/verify"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/restchain"
)

// envRecorder is a fake stack that remembers the environment each
// component was (re)started with.
func envRecorder(names ...string) (*fakeStack, func(name, key string) string) {
	fs := newFakeStack(names...)
	var mu sync.Mutex
	seen := map[string]map[string]string{}
	fs.restarted = func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		seen[name] = map[string]string{failpoint.Env: os.Getenv(failpoint.Env), restchain.Env: os.Getenv(restchain.Env)}
		if strings.Contains(os.Getenv(failpoint.Env), relayFailpoint) {
			return 0 // the crash failpoint: dies at once
		}
		return 998
	}
	return fs, func(name, key string) string {
		mu.Lock()
		defer mu.Unlock()
		return seen[name][key]
	}
}

// A mutation is armed in exactly the components named (a prefix with *),
// kept by a fault that restarts one of them, and removed by the rollback.
func TestArmingAMutation(t *testing.T) {
	fs, envOf := envRecorder("relay", "worker-1", "worker-2", "orders")
	cfg := Config{Stack: fs, Arm: []Arming{{Component: "worker-*", Failpoints: []string{"saga.a", "saga.b"}}, {Component: "relay", Failpoints: []string{"relay.x"}}}}
	e, r := oneFault(cfg, Spec{Name: "relay-crash", Kind: KindRelayCrash, Target: "relay", Duration: time.Millisecond})
	if err := e.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"worker-1", "worker-2"} {
		if got := envOf(w, failpoint.Env); got != "saga.a,saga.b" {
			t.Errorf("%s armed with %q, want saga.a,saga.b", w, got)
		}
	}
	if got := envOf("orders", failpoint.Env); got != "" {
		t.Errorf("orders armed with %q, want nothing", got)
	}
	r.run(context.Background())
	if got := envOf("relay", failpoint.Env); got != "relay.x,"+relayFailpoint {
		t.Errorf("the crashing relay ran with %q, want its mutation and the crash: relay.x,%s", got, relayFailpoint)
	}
	if got := envString(e.runEnv("relay")); got != failpoint.Env+"=relay.x" {
		t.Errorf("relay back with %q, want the mutation alone", got)
	}
	done := 0
	for _, d := range e.rollback() {
		if strings.HasPrefix(d, "restarted ") && strings.HasSuffix(d, "without the run's settings") {
			done++
		}
	}
	if done != 3 {
		t.Errorf("rollback %v, want relay and both workers restarted clean", done)
	}
	if _, set := os.LookupEnv(failpoint.Env); set {
		t.Errorf("%s left in the harness's environment", failpoint.Env)
	}
}

func TestArmingNamesWhatIsMissing(t *testing.T) {
	fs := newFakeStack("worker-1")
	e := New(Config{Stack: fs, Arm: []Arming{{Component: "inventory", Failpoints: []string{"inventory.x"}}}})
	err := e.prepare(context.Background())
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "no component inventory") {
		t.Fatalf("got %v, want bad input naming inventory", err)
	}
}

func TestRestPlatformRestartsOrdersOnTheChain(t *testing.T) {
	fs, envOf := envRecorder("orders", "worker-1")
	e := New(Config{Stack: fs, Platform: PlatformRest})
	if err := e.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := envOf("orders", restchain.Env); got != restchain.Mode {
		t.Errorf("orders restarted with %s=%q, want %q", restchain.Env, got, restchain.Mode)
	}
	if calls := fs.Calls(); fmt.Sprint(calls) != "[restart orders]" {
		t.Errorf("calls %v, want orders alone", calls)
	}
}

// A run directory that exists is bad input: no verdict, nothing written.
func TestRunRefusesAnExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	res, err := New(Config{Out: dir, Stack: newFakeStack()}).Run(context.Background())
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), dir) || res != nil {
		t.Fatalf("got %v, %v; want bad input naming %s", res, err, dir)
	}
}

// A missing store is bad input, named, before anything runs.
func TestRunNamesAMissingStore(t *testing.T) {
	out := t.TempDir() + "/run"
	_, err := New(Config{Out: out, Stack: newFakeStack(), PostgresURL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}).Run(context.Background())
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("got %v, want bad input naming the store", err)
	}
}

func TestSelectMutations(t *testing.T) {
	all, err := SelectMutations(nil, "")
	if err != nil || len(all) < 15 {
		t.Fatalf("all: %d, %v; want every defect of the issue", len(all), err)
	}
	names := map[string]bool{}
	for _, m := range all {
		if names[m.Name] {
			t.Errorf("mutation %s twice", m.Name)
		}
		names[m.Name] = true
		if (len(m.Arm) == 0) != (m.Platform == verify.PlatformRest) || m.Gate == "" || m.Duration <= 0 {
			t.Errorf("mutation %+v: want failpoints (or the REST baseline), a gate and a duration", m)
		}
		for _, f := range m.Faults {
			if f.At < m.Duration*2/5 || f.End() > m.Duration*4/5 {
				t.Errorf("mutation %s: fault %s at %s..%s, outside the 5x hold of %s", m.Name, f.Name, f.At, f.End(), m.Duration)
			}
		}
	}
	ci, err := SelectMutations(nil, "ci")
	if err != nil || len(ci) < 4 {
		t.Errorf("ci subset: %d, %v; want at least 4", len(ci), err)
	}
	if _, err := SelectMutations([]string{"skip-refund", "no-such-bug"}, ""); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `"no-such-bug"`) {
		t.Errorf("unknown mutation: got %v, want bad input naming it", err)
	}
	if _, err := SelectMutations(nil, "nightly"); !errors.Is(err, ErrBadInput) {
		t.Errorf("unknown subset: got %v, want bad input", err)
	}
}

func TestJudge(t *testing.T) {
	m := Mutation{Name: "skip-refund", Gate: "inconsistent orders", Class: verify.ClassInconsistent}
	failed := func(gate string, counts map[string]int) *report.Result {
		return &report.Result{Counts: counts, Gates: []verify.Gate{{Name: "lost orders", Pass: true}, {Name: gate, Pass: false}}}
	}
	for _, tc := range []struct {
		name    string
		res     *report.Result
		err     error
		ok      bool
		verdict string
	}{
		{"ok/caught", failed("inconsistent orders", map[string]int{verify.ClassInconsistent: 3}), ErrGates, true, "caught"},
		{"err/passed", &report.Result{}, nil, false, "MISSED"},
		{"err/failed another gate", failed("k6 thresholds", map[string]int{verify.ClassInconsistent: 3}), ErrGates, false, "MISSED"},
		{"err/no order of the class", failed("inconsistent orders", nil), ErrGates, false, "MISSED"},
		{"err/could not run", nil, fmt.Errorf("%w: no stack", ErrBadInput), false, "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, verdict, _ := m.Judge(tc.res, tc.err)
			if ok != tc.ok || verdict != tc.verdict {
				t.Fatalf("got %v %s, want %v %s", ok, verdict, tc.ok, tc.verdict)
			}
		})
	}
}

// The clean run comes first (the run make chaos is, on the stack as the user
// left it); a failed baseline fails the selftest but every mutation still
// runs, each in its own numbered directory.
func TestSelftestRunsTheCleanRunFirst(t *testing.T) {
	ms := []Mutation{
		{Name: "skip-refund", Gate: "inconsistent orders", Class: verify.ClassInconsistent},
		{Name: "orchestrator-slow", Gate: "consumer lag"},
	}
	caught := func(gate, class string) *report.Result {
		r := &report.Result{Gates: []verify.Gate{{Name: gate, Pass: false}}}
		if class != "" {
			r.Counts = map[string]int{class: 1}
		}
		return r
	}
	for _, tc := range []struct {
		name      string
		cleanPass bool
		ok        bool
	}{
		{"baseline passes", true, true},
		{"baseline fails", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var order []string
			run := func(_ context.Context, cfg Config) (*report.Result, error) {
				order = append(order, cfg.Out)
				switch cfg.Mutation {
				case "":
					if tc.cleanPass {
						return &report.Result{}, nil
					}
					return caught("consumer lag", ""), ErrGates
				case "skip-refund":
					return caught("inconsistent orders", verify.ClassInconsistent), ErrGates
				default:
					return caught("consumer lag (orchestrators)", ""), ErrGates
				}
			}
			clean := Config{Profile: "short"}
			rows, ok := Selftest(context.Background(), ms, &clean, Config{}, "/r/sel", run, &strings.Builder{})
			want := []string{"/r/sel/01-clean-short", "/r/sel/02-skip-refund", "/r/sel/03-orchestrator-slow"}
			if strings.Join(order, " ") != strings.Join(want, " ") {
				t.Fatalf("runs %v, want %v", order, want)
			}
			if ok != tc.ok || len(rows) != 3 || rows[0].Expected != "PASS" || rows[0].OK != tc.cleanPass || !rows[1].OK || !rows[2].OK {
				t.Fatalf("ok %v rows %+v; want ok %v, the clean row first", ok, rows, tc.ok)
			}
		})
	}
}

// A defect with two effects is caught by either, and by nothing else.
func TestJudgeEitherEffect(t *testing.T) {
	m := Mutation{Name: "charge-fresh-key", Gate: "duplicated orders", Class: verify.ClassDuplicated,
		OrGate: "inconsistent orders", OrClass: verify.ClassInconsistent}
	failed := func(gate string, counts map[string]int) *report.Result {
		return &report.Result{Counts: counts, Gates: []verify.Gate{{Name: gate, Pass: false}}}
	}
	for _, tc := range []struct {
		name string
		res  *report.Result
		ok   bool
	}{
		{"ok/first effect", failed("duplicated orders", map[string]int{verify.ClassDuplicated: 2}), true},
		{"ok/second effect", failed("inconsistent orders", map[string]int{verify.ClassInconsistent: 2}), true},
		{"err/second gate without its class", failed("inconsistent orders", nil), false},
		{"err/another gate", failed("lost orders", map[string]int{verify.ClassLost: 2}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok, verdict, got := m.Judge(tc.res, ErrGates); ok != tc.ok {
				t.Fatalf("got %v %s (%s), want %v", ok, verdict, got, tc.ok)
			}
		})
	}
	if want := "FAIL: duplicated orders / duplicated, or inconsistent orders / inconsistent"; m.Expected() != want {
		t.Errorf("Expected() = %q, want %q", m.Expected(), want)
	}
}

// A schedule may overlap faults on purpose (a kill while Temporal is
// down): the second starts at its time, not after the first.
func TestOverlappingFaultsRunTogether(t *testing.T) {
	fs := newFakeStack("temporal", "orchestrator-2")
	plan := []Planned{
		{Spec: Spec{Name: "temporal-restart", Kind: KindRestart, Target: "temporal", Duration: 300 * time.Millisecond}},
		{Spec: Spec{Name: "orchestrator-kill", Kind: KindKill, Target: "orchestrator-2", Duration: 50 * time.Millisecond}, At: 100 * time.Millisecond},
	}
	e := New(Config{Stack: fs, Faults: plan})
	e.runFaults(context.Background(), time.Now())
	rs := e.faultRecords()
	if !rs[1].Start.Before(rs[0].End) {
		t.Fatalf("the kill started %s, after the restart ended %s", rs[1].Start, rs[0].End)
	}
}
