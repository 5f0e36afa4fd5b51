//go:build integration

package dashcheck

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
)

// TestLiveQueriesEvaluate runs every query of every real dashboard against
// the stack's Prometheus: none may error (syntax, functions on native
// histograms, variables left in). Whether each returns data depends on a
// load having run, which `make dashboards-check` proves; here a known series
// must pass and a missing one must fail, so the checker itself is proven
// against the real server.
func TestLiveQueriesEvaluate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &Checker{URL: "http://" + config.Addr(config.Prometheus), Window: 15 * time.Minute}

	if n, err := c.Series(ctx, `up{job="prometheus"}`); err != nil || n == 0 {
		t.Fatalf("up{job=\"prometheus\"}: %d series, err %v; want at least one (Prometheus scrapes itself)", n, err)
	}
	if n, err := c.Series(ctx, `stampede_no_such_metric_total`); err != nil || n != 0 {
		t.Fatalf("a missing metric: %d series, err %v; want 0 and no error", n, err)
	}
	if _, err := c.Series(ctx, `sum(rate(up[1m]`); err == nil {
		t.Fatal("a malformed query evaluated without error")
	}

	ds, err := LoadDir(dashboardsDir)
	if err != nil {
		t.Fatal(err)
	}
	results, err := c.Check(ctx, ds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	empty := 0
	for _, r := range results {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, ErrNoSeries):
			empty++
		default:
			t.Errorf("%s: %v", r.Query, r.Err)
		}
	}
	t.Logf("%d queries evaluated, %d returned no series in the last 15m (no load run yet?)", len(results), empty)
}
