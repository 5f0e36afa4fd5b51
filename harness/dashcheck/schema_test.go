package dashcheck

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboardsMatchGrafanaSchema reads every dashboard with the Grafana
// Foundation SDK's strict decoder (generated from Grafana's own dashboard and
// panel schemas): an unknown field, a wrong type or a missing required field
// in the dashboard, a panel's options or field config, or a Prometheus
// query fails here rather than in a user's Grafana. No Grafana runs where
// Stampede is developed.
func TestDashboardsMatchGrafanaSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardsDir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard.Dashboard
		if err := schemaErr(d.UnmarshalJSONStrict(b)); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if err := schemaErr(d.Validate()); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// TestSchemaCheckCatchesMistakes proves the strict decoder rejects a broken
// dashboard, so the test above can fail.
func TestSchemaCheckCatchesMistakes(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for name, body := range map[string]string{
		"err/expr is a number":    `{"title":"x","schemaVersion":39,"panels":[{"id":1,"type":"timeseries","title":"p","gridPos":{"h":8,"w":12,"x":0,"y":0},"targets":[{"refId":"A","expr":5}]}]}`,
		"err/gridPos is a string": `{"title":"x","schemaVersion":39,"panels":[{"id":1,"type":"timeseries","title":"p","gridPos":"top"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			var d dashboard.Dashboard
			if schemaErr(d.UnmarshalJSONStrict([]byte(body))) == nil {
				t.Error("the strict decoder accepted it")
			}
		})
	}
}

// schemaErr drops the typed-nil cog.BuildErrors the SDK returns on success.
func schemaErr(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}
