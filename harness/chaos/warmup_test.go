package chaos

import (
	"testing"
	"time"

	"github.com/stampede-dev/stampede/harness/report"
)

// The audit counts rows and workflows from a minute before the run, but
// never the warm-up's: those ended before the run started.
func TestSinceLeavesOutTheWarmup(t *testing.T) {
	started := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		warmup *report.Warmup
		want   time.Time
	}{
		{"no warm-up: a minute of slack", nil, started.Add(-time.Minute)},
		{"warm-up just before: from its end", &report.Warmup{Ended: started.Add(-2 * time.Second)}, started.Add(-2 * time.Second)},
		{"warm-up long before: a minute of slack", &report.Warmup{Ended: started.Add(-5 * time.Minute)}, started.Add(-time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Experiment{res: &report.Result{Started: started, Warmup: tt.warmup}}
			if got := e.since(); !got.Equal(tt.want) {
				t.Fatalf("since = %s, want %s", got, tt.want)
			}
		})
	}
}

// A mutated run follows another run on a warm stack; only the clean run
// (the one make chaos is) warms up.
func TestMutationRunsDoNotWarmUp(t *testing.T) {
	base := Config{Warmup: 30 * time.Second, WarmupRate: 20}
	for _, m := range Mutations() {
		if cfg := m.Config(base, t.TempDir()+"/x"); cfg.Warmup != 0 {
			t.Errorf("mutation %s warms up for %s", m.Name, cfg.Warmup)
		}
	}
}
