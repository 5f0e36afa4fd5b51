package dashcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
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
