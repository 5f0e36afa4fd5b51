package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCounterNilIgnores(t *testing.T) {
	var c *Counter
	c.Inc("x")
	c.Add(3)
}

func TestCounterRegisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	plain := NewCounter(reg, "test_plain_total", "A counter without labels.")
	byOutcome := NewCounter(reg, "test_outcomes_total", "A counter by outcome.", "outcome")
	// Registered under its own name: a second one of that name is refused.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("got a second test_plain_total registered, want a panic")
			}
		}()
		NewCounter(reg, "test_plain_total", "Again.")
	}()

	// Shown at 0 before anything is counted, as a prometheus.Counter is; a
	// labelled series only once counted.
	want := `
# HELP test_plain_total A counter without labels.
# TYPE test_plain_total counter
test_plain_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "test_plain_total", "test_outcomes_total"); err != nil {
		t.Error(err)
	}

	plain.Add(2)
	plain.Inc()
	byOutcome.Inc("ok")
	byOutcome.Add(4, "ok")
	byOutcome.Add(0, "none")
	want = `
# HELP test_outcomes_total A counter by outcome.
# TYPE test_outcomes_total counter
test_outcomes_total{outcome="none"} 0
test_outcomes_total{outcome="ok"} 5
# HELP test_plain_total A counter without labels.
# TYPE test_plain_total counter
test_plain_total 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "test_plain_total", "test_outcomes_total"); err != nil {
		t.Error(err)
	}
}
