package failpoint

import (
	"sync"
	"testing"
)

// reload reads STAMPEDE_FAILPOINTS again (once per process otherwise).
func reload() { once = sync.Once{} }

func TestArmedOnlyWhenListed(t *testing.T) {
	t.Setenv(Env, " saga.skip-refund, relay.mark-before-commit ,")
	reload()
	t.Cleanup(reload)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"saga.skip-refund", true},
		{"relay.mark-before-commit", true},
		{"relay.before-publish", false},
		{"", false},
	} {
		if got := Armed(tc.name); got != tc.want {
			t.Errorf("Armed(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Unarmed, a failpoint is free: nothing is armed, nothing allocates.
func TestUnarmedIsInertAndFree(t *testing.T) {
	t.Setenv(Env, "")
	reload()
	t.Cleanup(reload)
	allocs := testing.AllocsPerRun(1000, func() {
		if Armed("saga.skip-refund") {
			t.Fatal("armed with nothing listed")
		}
		Hit("relay.before-publish") // would kill the test process if armed
	})
	if allocs != 0 {
		t.Errorf("%v allocations per check, want 0", allocs)
	}
}

func BenchmarkUnarmed(b *testing.B) {
	for b.Loop() {
		Armed("saga.skip-refund")
	}
}
