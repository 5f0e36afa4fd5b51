package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stampede-dev/stampede/harness/bench"
)

// cpuRow is one second of the run: the cores each process of the stack used
// (its process tree, so PostgreSQL's backends count with it), their sum,
// what the load generator and this harness used (Others, not in Stack), and
// what the whole host was busy with (every process; idle, iowait and steal
// left out).
type cpuRow struct {
	At         time.Time          `json:"at"`
	Stack      float64            `json:"stackCores"`
	Host       float64            `json:"hostBusyCores"`
	Components map[string]float64 `json:"components"`
	Others     map[string]float64 `json:"others,omitempty"`
}

// cpuMeter samples the stack's CPU every second while the load runs and
// writes each sample as a line of JSON. A lag gate that fails on a host
// whose cores the stack already fills is a capacity verdict, not a stall of
// one component; the report says which it was.
type cpuMeter struct {
	stack Stack
	// others are processes beside the stack, by name (k6, the harness),
	// counted alone, without their children (k6 is the harness's child);
	// nil for none.
	others func() map[string]int
	out    io.Writer
	every  time.Duration

	mu   sync.Mutex
	rows []cpuRow
}

type procMark struct {
	pid int
	cpu time.Duration
}

// run samples until ctx ends.
func (m *cpuMeter) run(ctx context.Context) {
	prev, prevOthers, prevBusy, prevAt := m.read()
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, others, busy, at := m.read()
		row := cpuDelta(prev, cur, prevBusy, busy, at.Sub(prevAt))
		if o := cpuDelta(prevOthers, others, -1, -1, at.Sub(prevAt)); len(o.Components) > 0 {
			row.Others = o.Components
		}
		row.At = at
		prev, prevOthers, prevBusy, prevAt = cur, others, busy, at
		if row.Components == nil {
			continue
		}
		m.mu.Lock()
		m.rows = append(m.rows, row)
		m.mu.Unlock()
		if m.out != nil {
			if b, err := json.Marshal(row); err == nil {
				m.out.Write(append(b, '\n'))
			}
		}
	}
}

// read is every component's and other process's CPU so far (its process
// tree) and the host's busy time; nil maps when /proc cannot be read.
func (m *cpuMeter) read() (stack, others map[string]procMark, busy time.Duration, at time.Time) {
	tab, err := bench.ReadProcs("/proc")
	if err != nil {
		return nil, nil, -1, time.Now()
	}
	marks := func(pids map[string]int, cpuOf func(int) (time.Duration, bool)) map[string]procMark {
		out := map[string]procMark{}
		for name, pid := range pids {
			if pid == 0 {
				continue
			}
			if cpu, ok := cpuOf(pid); ok {
				out[name] = procMark{pid, cpu}
			}
		}
		return out
	}
	pids := map[string]int{}
	for _, name := range m.stack.Names() {
		pids[name] = m.stack.Pid(name)
	}
	if m.others != nil {
		others = marks(m.others(), tab.OwnCPU)
	}
	return marks(pids, tab.TreeCPU), others, bench.ReadHostCPU().Busy(), tab.At
}

// cpuDelta turns two readings wall apart into cores. A component that
// restarted in between (a new pid) or was not running at both is left out
// of that second; Components is nil when there is nothing to compare.
func cpuDelta(prev, cur map[string]procMark, prevBusy, busy, wall time.Duration) cpuRow {
	var row cpuRow
	if prev == nil || cur == nil || wall <= 0 {
		return row
	}
	row.Components = map[string]float64{}
	for name, c := range cur {
		p, ok := prev[name]
		if !ok || p.pid != c.pid || c.cpu < p.cpu {
			continue
		}
		cores := float64(c.cpu-p.cpu) / float64(wall)
		row.Components[name] = cores
		row.Stack += cores
	}
	if prevBusy >= 0 && busy >= prevBusy {
		row.Host = float64(busy-prevBusy) / float64(wall)
	}
	return row
}

// samples are the rows taken so far.
func (m *cpuMeter) samples() []cpuRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rows)
}

// cpuSummary says how much of the host the stack used between from and to:
// the mean, and the busiest window (a moving mean over window) with the
// three components that used most in it. "" without samples.
func cpuSummary(rows []cpuRow, from, to time.Time, window time.Duration, cores int) string {
	var in []cpuRow
	for _, r := range rows {
		if !r.At.Before(from) && !r.At.After(to) {
			in = append(in, r)
		}
	}
	if len(in) == 0 {
		return ""
	}
	var stack, host float64
	others := map[string]float64{}
	for _, r := range in {
		stack += r.Stack
		host += r.Host
		for name, c := range r.Others {
			others[name] += c
		}
	}
	n := float64(len(in))
	// The busiest window: rows are a second apart, so a window is the rows
	// within window of its first.
	best, bestAt, bestComp := -1.0, time.Time{}, map[string]float64{}
	for i := range in {
		sum, k, comp := 0.0, 0, map[string]float64{}
		for j := i; j < len(in) && in[j].At.Sub(in[i].At) < window; j++ {
			sum += in[j].Stack
			k++
			for name, c := range in[j].Components {
				comp[name] += c
			}
		}
		if mean := sum / float64(k); mean > best {
			best, bestAt = mean, in[i].At
			for name := range comp {
				comp[name] /= float64(k)
			}
			bestComp = comp
		}
	}
	names := slices.SortedFunc(maps.Keys(bestComp), func(a, b string) int {
		switch {
		case bestComp[a] > bestComp[b]:
			return -1
		case bestComp[a] < bestComp[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	var top []string
	for _, name := range names[:min(3, len(names))] {
		top = append(top, fmt.Sprintf("%s %.2f", name, bestComp[name]))
	}
	var beside string
	for _, name := range slices.Sorted(maps.Keys(others)) {
		beside += fmt.Sprintf(", %s %.2f", name, others[name]/n)
	}
	return fmt.Sprintf("stack %.2f cores mean over the load, %.2f in the busiest %s (from %s: %s); host busy %.2f cores mean%s, of %d",
		stack/n, best, window, bestAt.UTC().Format("15:04:05"), strings.Join(top, ", "), host/n, beside, cores)
}

// hostCores is the number of CPUs the host gives this run.
func hostCores() int { return runtime.NumCPU() }
