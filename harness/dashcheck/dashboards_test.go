package dashcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboardsDir is the repository's dashboards/, from this package.
const dashboardsDir = "../../dashboards"

// TestRealDashboards parses every dashboard of the repository: valid JSON,
// a lint without problems (every panel has a target, unique ids, templated
// datasource, no hard-coded instance), every variable resolvable, and the
// five dashboards the project promises.
func TestRealDashboards(t *testing.T) {
	ds, err := LoadDir(dashboardsDir)
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, d := range ds {
		t.Run(d.File, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dashboardsDir, d.File))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatal("not valid JSON")
			}
			for _, p := range Lint(d) {
				t.Error(p)
			}
			qs, err := d.Queries(Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) == 0 {
				t.Fatal("no queries")
			}
			perPanel := map[int]int{}
			for _, q := range qs {
				perPanel[q.PanelID]++
			}
			for _, p := range d.AllPanels() {
				if p.Type != "row" && perPanel[p.ID] == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
			}
		})
		if prev, dup := uids[d.UID]; dup {
			t.Errorf("uid %q used by %s and %s", d.UID, prev, d.File)
		}
		uids[d.UID] = d.File
	}
	for _, uid := range []string{"stampede-overview", "stampede-kafka", "stampede-saga", "stampede-notifications", "stampede-chaos"} {
		if uids[uid] == "" {
			t.Errorf("no dashboard with uid %s", uid)
		}
	}
}

// metricName finds metric names in an expression.
var metricName = regexp.MustCompile(`\b(?:stampede|k6|temporal)_[a-z0-9_]+`)

// TestDashboardMetricsDocumented: every metric a dashboard queries is
// described in docs/metrics.md (so a renamed metric shows up here, even in
// panels that draw 0 when their series are absent).
func TestDashboardMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := LoadDir(dashboardsDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		qs, err := d.Queries(Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			for _, name := range metricName.FindAllString(q.Expr, -1) {
				if strings.HasSuffix(name, "_") {
					continue // a regexp fragment: {__name__=~"stampede_kafka_.*"}
				}
				base := name
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					base = strings.TrimSuffix(base, suf)
				}
				if seen[base] {
					continue
				}
				seen[base] = true
				if !strings.Contains(string(doc), "`"+base+"`") {
					t.Errorf("%s / %s queries %s, which docs/metrics.md does not describe", q.Dashboard, q.Panel, base)
				}
			}
		}
	}
	if len(seen) < 30 {
		t.Errorf("found only %d metric names in the dashboards", len(seen))
	}
}

// registered finds the metrics the code registers with client_golang.
var registered = regexp.MustCompile(`Name:\s*"(stampede_[a-z0-9_]+)"`)

// TestCodeMetricsDocumented: every stampede_* metric the repository's code
// registers is described in docs/metrics.md.
func TestCodeMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range []string{"../../platform", "../../harness", "../../cmd"} {
		err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range registered.FindAllSubmatch(b, -1) {
				n++
				if !strings.Contains(string(doc), "`"+string(m[1])+"`") {
					t.Errorf("%s registers %s, which docs/metrics.md does not describe", path, m[1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 20 {
		t.Errorf("found only %d registered metrics: is the pattern still right?", n)
	}
}
