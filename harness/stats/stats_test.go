package stats

import (
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarise(ds)
	want := Dist{N: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Fatalf("Summarise = %+v, want %+v", got, want)
	}
	if got := Summarise(nil); got != (Dist{}) {
		t.Fatalf("Summarise(nil) = %+v, want zero", got)
	}
}
