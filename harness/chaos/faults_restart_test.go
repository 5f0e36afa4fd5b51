package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestRestartStopsAndStarts(t *testing.T) {
	fs := newFakeStack("kafka")
	e, r := oneFault(Config{Stack: fs}, Spec{Name: "kafka-restart", Kind: KindRestart, Target: "kafka"})
	ctx := context.Background()
	if err := r.fault.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := r.fault.Inject(ctx); err != nil {
		t.Fatalf("inject: %v", err)
	}
	if got := r.record(); got.Start.IsZero() || !strings.HasPrefix(got.Detail, "SIGTERM pid 100, stopped in") {
		t.Errorf("record %+v: want started, detail SIGTERM pid 100, stopped in ...", got)
	}
	if !e.broken["kafka"] {
		t.Errorf("kafka not marked broken")
	}
	if err := r.fault.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	want := []string{"kill kafka terminated", "start kafka"}
	if got := fs.Calls(); fmt.Sprint(got) != fmt.Sprint(want) || len(e.broken) != 0 {
		t.Errorf("calls %v, broken %v; want %v and nothing broken", got, e.broken, want)
	}
}
