package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the kernel's USER_HZ: /proc reports CPU times in 1/100 s on
// every Linux this runs on.
const ClockTick = 10 * time.Millisecond

// procStat is the part of /proc/PID/stat the cost benchmark reads.
type procStat struct {
	pid, ppid int
	// own is utime+stime; reaped is cutime+cstime (children it waited for).
	own, reaped time.Duration
}

// parseStat reads one /proc/PID/stat line.
func parseStat(b []byte) (procStat, error) {
	// The command name may hold spaces and parentheses; fields start after
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	j := bytes.IndexByte(b, ' ')
	if i < 0 || j < 0 {
		return procStat{}, fmt.Errorf("stat: malformed line")
	}
	pid, err := strconv.Atoi(string(b[:j]))
	if err != nil {
		return procStat{}, fmt.Errorf("stat: pid: %w", err)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is the state, f[1] the ppid, f[11..14] utime stime cutime cstime.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat of %d: %d fields", pid, len(f))
	}
	var n [5]int64
	for k, idx := range []int{1, 11, 12, 13, 14} {
		if n[k], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("stat of %d: field %d: %w", pid, idx, err)
		}
	}
	return procStat{
		pid: pid, ppid: int(n[0]),
		own:    time.Duration(n[1]+n[2]) * ClockTick,
		reaped: time.Duration(n[3]+n[4]) * ClockTick,
	}, nil
}

// ProcTable is one reading of every process's CPU times.
type ProcTable struct {
	At    time.Time
	procs map[int]procStat
	kids  map[int][]int
}

// ReadProcs reads /proc (root: "/proc") once.
func ReadProcs(root string) (ProcTable, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return ProcTable{}, err
	}
	t := ProcTable{At: time.Now(), procs: map[int]procStat{}, kids: map[int][]int{}}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		t.add(st)
	}
	return t, nil
}

func (t *ProcTable) add(st procStat) {
	t.procs[st.pid] = st
	t.kids[st.ppid] = append(t.kids[st.ppid], st.pid)
}

// TreeCPU is the CPU time used so far by pid and every process below it:
// its own time, what its waited-for children used, and the same for every
// live descendant. It grows monotonically while the tree lives (a child that
// exits moves from "live descendant" to "reaped" of its parent), so it
// accounts PostgreSQL's short-lived backends too. 0, false if pid is gone.
func (t ProcTable) TreeCPU(pid int) (time.Duration, bool) {
	st, ok := t.procs[pid]
	if !ok {
		return 0, false
	}
	sum := st.own + st.reaped
	for _, k := range t.kids[pid] {
		if k == pid {
			continue
		}
		d, _ := t.TreeCPU(k)
		sum += d
	}
	return sum, true
}

// OwnCPU is the CPU time pid itself used so far (its threads, not its
// children); 0, false if pid is gone.
func (t ProcTable) OwnCPU(pid int) (time.Duration, bool) {
	st, ok := t.procs[pid]
	return st.own, ok
}

// CostRow is one component's share of a cost run.
type CostRow struct {
	Name string `json:"name"`
	// IdleCores is the component's CPU use with no load (cores).
	IdleCores float64 `json:"idleCores"`
	// LoadCPU is the CPU it used during the load window; Net is LoadCPU less
	// what it would have used idle over the same window (never negative).
	LoadCPU time.Duration `json:"loadCpuNs"`
	Net     time.Duration `json:"netCpuNs"`
	// PerSaga is Net divided by the completed sagas.
	PerSaga time.Duration `json:"perSagaNs"`
	// Gone: the process was not there at one of the readings (restarted or
	// stopped); its figures are left out of the total.
	Gone bool `json:"gone,omitempty"`
}

// CostSample is the three readings of one component: start and end of the
// idle window, end of the load window.
type CostSample struct {
	Name string
	Pid  int
	// Idle0, Idle1, Load1 are TreeCPU at the three readings; ok false when
	// the pid was gone at any of them.
	Idle0, Idle1, Load1 time.Duration
	OK                  bool
}

// Sample reads a component's CPU from the three tables.
func Sample(name string, pid int, t0, t1, t2 ProcTable) CostSample {
	a, ok0 := t0.TreeCPU(pid)
	b, ok1 := t1.TreeCPU(pid)
	c, ok2 := t2.TreeCPU(pid)
	return CostSample{Name: name, Pid: pid, Idle0: a, Idle1: b, Load1: c, OK: ok0 && ok1 && ok2 && b >= a && c >= b}
}

// CostRows turns samples into rows: idle rate from [t0,t1], load CPU over
// [t1,t2], net of the idle rate, per completed saga. Sorted by PerSaga, the
// most expensive first; the total is returned apart (components only).
func CostRows(samples []CostSample, idle, load time.Duration, completed int) ([]CostRow, CostRow) {
	rows := make([]CostRow, 0, len(samples))
	total := CostRow{Name: "total"}
	for _, s := range samples {
		r := CostRow{Name: s.Name, Gone: !s.OK}
		if s.OK {
			if idle > 0 {
				r.IdleCores = float64(s.Idle1-s.Idle0) / float64(idle)
			}
			r.LoadCPU = s.Load1 - s.Idle1
			r.Net = max(r.LoadCPU-time.Duration(r.IdleCores*float64(load)), 0)
			if completed > 0 {
				r.PerSaga = r.Net / time.Duration(completed)
			}
			total.IdleCores += r.IdleCores
			total.LoadCPU += r.LoadCPU
			total.Net += r.Net
		}
		rows = append(rows, r)
	}
	if completed > 0 {
		total.PerSaga = total.Net / time.Duration(completed)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].PerSaga > rows[j].PerSaga })
	return rows, total
}
