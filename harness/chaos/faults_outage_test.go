package chaos

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"
)

func TestOutageRefusesConnections(t *testing.T) {
	breakPath(t, Spec{Name: "outage", Kind: KindOutage, Target: "payments"},
		func(_ string, _ time.Duration, err error) string {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return "want connection refused, got " + errString(err)
			}
			return ""
		})
}

// The workers run with the outage budget for the run, restarted once
// however many outages the plan holds; the rollback restores them.
func TestOutagePrepareRestartsTheWorkersWithTheBudget(t *testing.T) {
	tests := []struct {
		name      string
		budget    time.Duration
		wantCalls []string
	}{
		{"ok/budget", 10 * time.Second, []string{"restart worker-1", "restart worker-2"}},
		{"ok/no budget: workers left alone", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeStack("payments", "worker-1", "worker-2")
			plan := []Planned{
				{Spec: Spec{Name: "outage-1", Kind: KindOutage, Target: "payments"}},
				{Spec: Spec{Name: "outage-2", Kind: KindOutage, Target: "payments"}},
			}
			e := New(Config{Stack: fs, Faults: plan, OutageBudget: tt.budget})
			if err := e.prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := fs.Calls(); fmt.Sprint(got) != fmt.Sprint(tt.wantCalls) {
				t.Errorf("calls %v, want %v", got, tt.wantCalls)
			}
			for _, w := range []string{"worker-1", "worker-2"} {
				want := ""
				if tt.budget > 0 {
					want = EnvOutageBudget + "=" + tt.budget.String()
				}
				if got := envString(e.modified[w]); got != want {
					t.Errorf("%s runs with %q, want %q", w, got, want)
				}
			}
		})
	}
}
