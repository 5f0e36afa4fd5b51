package bench

import (
	"syscall"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}

// TestSpeedUnitsDependOnEveryUnit: the work's result changes with its size,
// so no part of it can be optimised away.
func TestSpeedUnitsDependOnEveryUnit(t *testing.T) {
	if speedUnits(100) == speedUnits(101) {
		t.Error("speedUnits(100) == speedUnits(101): the last unit did not count")
	}
	if speedUnits(50) != speedUnits(50) {
		t.Error("speedUnits is not deterministic")
	}
}

// TestMeasureHostSpeedCountsThreadCPU: the figure is work per CPU-second of
// the measuring thread, so it is positive and a round's own time is about
// what was asked (not checked tightly: this is no timing test).
func TestMeasureHostSpeedCountsThreadCPU(t *testing.T) {
	h := MeasureHostSpeed(3, 20*time.Millisecond)
	if h.Rounds != 3 || h.KUnitsPerCPUSecond <= 0 || h.KRoundTripsPerCPUSecond <= 0 {
		t.Fatalf("MeasureHostSpeed = %+v, want 3 rounds and positive speeds", h)
	}
	if s := h.String(); s == "unknown" {
		t.Errorf("String() = %q", s)
	}
	if s := (HostSpeed{}).String(); s != "unknown" {
		t.Errorf("zero String() = %q, want unknown", s)
	}
}

func TestRoundTripsMoveEveryByte(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("no socket pair here: %v", err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	if err := roundTrips([2]int(fds), 1000); err != nil {
		t.Fatal(err)
	}
	// Everything written was read back: nothing is left in the pair.
	syscall.SetNonblock(fds[1], true)
	var b [1]byte
	if n, err := syscall.Read(fds[1], b[:]); n > 0 || err != syscall.EAGAIN {
		t.Errorf("left in the socket: read %d, %v; want EAGAIN", n, err)
	}
}

func BenchmarkSpeedUnit(b *testing.B) {
	for range b.N {
		speedUnits(1)
	}
}
