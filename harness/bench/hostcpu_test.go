package bench

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestHostCPU(t *testing.T) {
	parse := func(s string) HostCPU { return parseHostCPU(bufio.NewScanner(strings.NewReader(s))) }
	start := parse("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n")
	end := parse("cpu  400 0 150 900 10 0 0 240 0 0\ncpu0 200 0 75 450 5 0 0 120 0 0\n")
	for _, tc := range []struct {
		name       string
		start, end HostCPU
		want       string
	}{
		{"ok/steal +200 ticks of +700", start, end, "28.6%"},
		{"ok/none stolen", start, start2(start), "0.0%"},
		{"err/no /proc/stat", HostCPU{}, end, ""},
		{"err/short cpu line", parse("cpu 1 2 3\n"), end, ""},
		{"err/not a number", parse("cpu 1 2 3 4 5 6 7 x\n"), end, ""},
		{"err/counters went back", end, start, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Stolen(tc.start, tc.end); got != tc.want {
				t.Fatalf("Stolen = %q, want %q", got, tc.want)
			}
		})
	}
	if got := start.Busy(); got != 1500*time.Millisecond {
		t.Errorf("busy = %s, want 1.5s (user 100 + system 50 ticks; idle, iowait and steal left out)", got)
	}
	if got := start.Gross(); got != 1900*time.Millisecond {
		t.Errorf("gross = %s, want 1.9s (busy 1.5s and steal 0.4s)", got)
	}
	if got := (HostCPU{}).Busy(); got != -1 {
		t.Errorf("busy of an unread /proc/stat = %s, want -1", got)
	}
	if got := ReadHostCPU(); got.ok && got.total == 0 {
		t.Errorf("read /proc/stat as %+v", got)
	}
}

// start2 is start with 100 more idle ticks and no steal.
func start2(s HostCPU) HostCPU { s.total += 100; return s }
