package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a ')' of its own, as the kernel prints it.
	line := "4242 (postgres: a) b) S 100 4242 4242 0 -1 4194560 1 0 0 0 150 25 7 3 20 0 1 0 1 1 1\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.pid != 4242 || st.ppid != 100 {
		t.Errorf("pid/ppid = %d/%d, want 4242/100", st.pid, st.ppid)
	}
	if st.own != 1750*time.Millisecond || st.reaped != 100*time.Millisecond {
		t.Errorf("own/reaped = %s/%s, want 1.75s/100ms", st.own, st.reaped)
	}
	for _, bad := range []string{"", "x (y) S 1", "12 (y) S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func table(ps ...procStat) ProcTable {
	t := ProcTable{procs: map[int]procStat{}, kids: map[int][]int{}}
	for _, p := range ps {
		t.add(p)
	}
	return t
}

func TestTreeCPUCountsChildrenLiveAndReaped(t *testing.T) {
	// Postmaster 10 with a live backend 11 (which has a child 12) and
	// reaped backends accounted in its cutime; 20 is someone else.
	before := table(
		procStat{pid: 10, ppid: 1, own: time.Second, reaped: 2 * time.Second},
		procStat{pid: 11, ppid: 10, own: 300 * time.Millisecond},
		procStat{pid: 12, ppid: 11, own: 50 * time.Millisecond},
		procStat{pid: 20, ppid: 1, own: time.Hour},
	)
	got, ok := before.TreeCPU(10)
	if !ok || got != 3350*time.Millisecond {
		t.Fatalf("TreeCPU(10) = %s, %v; want 3.35s", got, ok)
	}
	// Backend 11 exits and is reaped: its time (and its reaped child's) moves
	// into 10's cutime; the tree total must not drop.
	after := table(
		procStat{pid: 10, ppid: 1, own: time.Second, reaped: 2*time.Second + 400*time.Millisecond},
	)
	got2, _ := after.TreeCPU(10)
	if got2 < got {
		t.Errorf("tree total dropped from %s to %s when a child was reaped", got, got2)
	}
	if _, ok := after.TreeCPU(99); ok {
		t.Error("TreeCPU of a missing pid reported ok")
	}
	// OwnCPU is the process alone: neither its live nor its reaped children.
	if own, ok := before.OwnCPU(10); !ok || own != time.Second {
		t.Errorf("OwnCPU(10) = %s, %v; want 1s", own, ok)
	}
	if _, ok := before.OwnCPU(99); ok {
		t.Error("OwnCPU of a missing pid reported ok")
	}
}

func TestCostRowsSubtractsIdle(t *testing.T) {
	samples := []CostSample{
		// 0.1 cores idle over 10 s; 12 s of CPU over a 20 s load: net 10 s.
		{Name: "temporal", Idle0: 0, Idle1: time.Second, Load1: 13 * time.Second, OK: true},
		// Busier idle than load: net clamps at 0.
		{Name: "prometheus", Idle0: 0, Idle1: 5 * time.Second, Load1: 6 * time.Second, OK: true},
		{Name: "gone", OK: false},
	}
	rows, total := CostRows(samples, 10*time.Second, 20*time.Second, 100)
	if rows[0].Name != "temporal" || rows[0].Net != 10*time.Second || rows[0].PerSaga != 100*time.Millisecond {
		t.Errorf("temporal row = %+v", rows[0])
	}
	if rows[0].IdleCores < 0.0999 || rows[0].IdleCores > 0.1001 {
		t.Errorf("idle cores = %v, want 0.1", rows[0].IdleCores)
	}
	for _, r := range rows {
		if r.Name == "prometheus" && r.Net != 0 {
			t.Errorf("prometheus net = %s, want 0 (clamped)", r.Net)
		}
		if r.Name == "gone" && !r.Gone {
			t.Error("missing process not marked gone")
		}
	}
	if total.Net != 10*time.Second || total.PerSaga != 100*time.Millisecond {
		t.Errorf("total = %+v", total)
	}
}

func TestReadProcsSeesItself(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	tab, err := ReadProcs("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.TreeCPU(os.Getpid()); !ok {
		t.Error("own pid not in the table")
	}
	// A fake /proc with a malformed entry is skipped, not fatal.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "7"), 0o755)
	os.WriteFile(filepath.Join(dir, "7", "stat"), []byte("garbage"), 0o644)
	os.MkdirAll(filepath.Join(dir, "8"), 0o755)
	os.WriteFile(filepath.Join(dir, "8", "stat"), []byte("8 (x) S 1 8 8 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 1 1 1"), 0o644)
	ft, err := ReadProcs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := ft.TreeCPU(8); !ok || d != 100*time.Millisecond {
		t.Errorf("fake pid 8 = %s, %v", d, ok)
	}
}
