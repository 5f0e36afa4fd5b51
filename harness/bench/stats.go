// Package bench measures the platform on the real stack and writes the
// figures the README and the issue notes quote, so every number has a
// command that reproduces it.
//
// It must never report a figure it did not measure in the run it describes.
package bench

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
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", d.N, ms(d.P50), ms(d.P90), ms(d.P99), ms(d.Max))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
