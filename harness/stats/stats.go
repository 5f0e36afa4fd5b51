// Package stats summarises sets of latencies (count, nearest-rank
// percentiles, maximum) for the benchmarks, the chaos audit and the report.
//
// It must never do I/O or import another harness package: the benchmark and
// the audit both depend on it, and on nothing of each other.
package stats

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Dist summarises a set of durations.
type Dist struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

// Summarise returns the distribution of ds (which it sorts).
func Summarise(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return Dist{N: len(ds), P50: Quantile(ds, .50), P90: Quantile(ds, .90), P99: Quantile(ds, .99), Max: ds[len(ds)-1]}
}

// Quantile returns the q-quantile of sorted ds (nearest rank).
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func (d Dist) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", d.N, Ms(d.P50), Ms(d.P90), Ms(d.P99), Ms(d.Max))
}

// Ms formats d in milliseconds with one decimal, the unit every figure of
// the harness is quoted in.
func Ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
