package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// HostCPU is the host's aggregate CPU time from /proc/stat's "cpu" line,
// in clock ticks: all of it, what was idle, and what the hypervisor gave
// other guests while this one had work (steal).
type HostCPU struct {
	total, steal uint64
	idle         uint64 // idle and iowait
	ok           bool
}

// Busy is the time every CPU spent running something here: all of it but
// idle, iowait and steal; -1 when unknown.
func (t HostCPU) Busy() time.Duration {
	if !t.ok {
		return -1
	}
	return time.Duration(t.total-t.idle-t.steal) * ClockTick
}

// Gross is Busy with steal counted in: the time every CPU was not idle,
// as the guest sees it; -1 when unknown.
func (t HostCPU) Gross() time.Duration {
	if !t.ok {
		return -1
	}
	return time.Duration(t.total-t.idle) * ClockTick
}

// ReadHostCPU reads /proc/stat; the zero HostCPU where there is none.
func ReadHostCPU() HostCPU {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return HostCPU{}
	}
	defer f.Close()
	return parseHostCPU(bufio.NewScanner(f))
}

// parseHostCPU takes the first "cpu " line: user nice system idle iowait
// irq softirq steal [guest guest_nice], the guests already counted in user
// and nice.
func parseHostCPU(sc *bufio.Scanner) HostCPU {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return HostCPU{}
		}
		var t HostCPU
		for i, s := range f[1:9] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return HostCPU{}
			}
			t.total += v
			switch i {
			case 3, 4:
				t.idle += v
			case 7:
				t.steal = v
			}
		}
		t.ok = true
		return t
	}
	return HostCPU{}
}

// Stolen is the share of the host's CPU time between start and end that
// the hypervisor gave to other guests, as "12.3%"; "" when unknown. A run
// on a host that loses much of its CPU this way is not judging the
// platform alone: it is printed beside the verdict, like the load.
func Stolen(start, end HostCPU) string {
	if !start.ok || !end.ok || end.total <= start.total || end.steal < start.steal {
		return ""
	}
	return fmt.Sprintf("%.1f%%", 100*float64(end.steal-start.steal)/float64(end.total-start.total))
}
