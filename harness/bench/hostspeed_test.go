package bench

import (
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
	if h.Rounds != 3 || h.KUnitsPerCPUSecond <= 0 {
		t.Fatalf("MeasureHostSpeed = %+v, want 3 rounds and a positive speed", h)
	}
	if s := h.String(); s == "unknown" {
		t.Errorf("String() = %q", s)
	}
	if s := (HostSpeed{}).String(); s != "unknown" {
		t.Errorf("zero String() = %q, want unknown", s)
	}
}

func BenchmarkSpeedUnit(b *testing.B) {
	for range b.N {
		speedUnits(1)
	}
}
