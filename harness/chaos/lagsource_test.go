package chaos

import (
	"testing"
	"time"

	"github.com/stampede-dev/stampede/harness/verify"
)

// TestTailWaitOnlyUnderALooseLimit: the broker may hold a lag source's tail
// fetch only where the source's own limit is far above the wait (lags under
// the wait read 0); the orchestrators' sources, under the tight gate, get
// none.
func TestTailWaitOnlyUnderALooseLimit(t *testing.T) {
	cfg := Config{Limits: verify.Limits{MaxLag: 100 * time.Millisecond,
		SourceLag: map[string]time.Duration{SourceProjection: time.Second}}}
	for _, tc := range []struct {
		source string
		limit  time.Duration // the projection's limit
		want   time.Duration
	}{
		{SourceSampler, time.Second, 0},
		{SourceShipping, time.Second, 0},
		{SourceProjection, time.Second, 100 * time.Millisecond},
		{SourceProjection, 500 * time.Millisecond, 50 * time.Millisecond},
		{SourceProjection, 10 * time.Second, 100 * time.Millisecond},
		{SourceProjection, 100 * time.Millisecond, 0}, // no looser than the gate
	} {
		cfg.Limits.SourceLag[SourceProjection] = tc.limit
		if got := cfg.tailWait(tc.source); got != tc.want {
			t.Errorf("tailWait(%s) with the projection's limit %s = %s, want %s", tc.source, tc.limit, got, tc.want)
		}
		for _, src := range cfg.lagSources() {
			if src.name == tc.source && src.name != SourceProjection && cfg.tailWait(src.name) != 0 {
				t.Errorf("%s: a wait under the tight gate", src.name)
			}
		}
	}
}
