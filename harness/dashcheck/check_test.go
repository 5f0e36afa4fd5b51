package dashcheck

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProm answers the Prometheus HTTP API: an expression containing
// "broken" is a bad_data error, one containing "nothing" an empty matrix,
// "histo" a native-histogram series, anything else one float series. It
// records every expression it was asked.
type fakeProm struct {
	mu    sync.Mutex
	exprs []string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/status/buildinfo":
		w.Write([]byte(`{"status":"success","data":{"version":"2.42.0"}}`))
		return
	case "/api/v1/query_range":
	default:
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, k := range []string{"start", "end", "step"} {
		if r.Form.Get(k) == "" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"missing ` + k + `"}`))
			return
		}
	}
	expr := r.Form.Get("query")
	f.mu.Lock()
	f.exprs = append(f.exprs, expr)
	f.mu.Unlock()
	switch {
	case strings.Contains(expr, "broken"):
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected identifier"}`))
	case strings.Contains(expr, "nothing"):
		w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	case strings.Contains(expr, "histo"):
		w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1700000000,{"count":"3","sum":"1.5","buckets":[]}]]}]}}`))
	default:
		w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"orders"},"values":[[1700000000,"1"],[1700000002,"2"]]}]}}`))
	}
}

const testDashboard = `{
  "uid": "t", "title": "Test", "schemaVersion": 39,
  "templating": {"list": [
    {"name": "datasource", "type": "datasource", "query": "prometheus"},
    {"name": "job", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"}, "includeAll": true, "allValue": ".*"},
    {"name": "instance", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"}, "includeAll": true, "query": {"query": "label_values(up{job=~\"$job\"}, instance)", "refId": "v"}},
    {"name": "q", "type": "custom", "current": {"text": "0.99", "value": "0.99"}}
  ]},
  "annotations": {"list": [
    {"builtIn": 1, "name": "Annotations & Alerts", "datasource": {"type": "grafana", "uid": "-- Grafana --"}},
    {"name": "Faults", "enable": true, "datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": "fault_active > 0"}
  ]},
  "panels": [
    {"id": 1, "type": "timeseries", "title": "Good", "datasource": {"type": "prometheus", "uid": "${datasource}"},
     "targets": [{"refId": "A", "expr": "sum(rate(up{job=~\"$job\"}[$__rate_interval]))"}]},
    {"id": 2, "type": "timeseries", "title": "Errors", "datasource": {"type": "prometheus", "uid": "${datasource}"},
     "targets": [{"refId": "A", "expr": "broken query"}]},
    {"id": 3, "type": "row", "title": "Folded", "collapsed": true, "panels": [
      {"id": 4, "type": "timeseries", "title": "Empty", "datasource": {"type": "prometheus", "uid": "${datasource}"},
       "targets": [{"refId": "A", "expr": "nothing_total{job=~\"${job}\"}"}, {"refId": "B", "expr": "histogram_quantile($q, rate(histo[$__interval]))"}]}
    ]}
  ]
}`

func writeDashboard(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheck(t *testing.T) {
	fp := &fakeProm{}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	ds, err := LoadDir(writeDashboard(t, testDashboard))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		allow      *regexp.Regexp
		wantFailed map[string]error // "panel [ref]" -> error it fails with
	}{
		{"err/empty and error both fail", nil, map[string]error{
			"Errors [A]":         nil, // any error
			"Folded / Empty [A]": ErrNoSeries,
		}},
		{"ok/allow-empty passes the empty panel, never the error", regexp.MustCompile(`^Test \(test\.json\) / Folded / Empty$`), map[string]error{
			"Errors [A]": nil,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{URL: srv.URL, Window: 10 * time.Minute, AllowEmpty: tc.allow}
			results, err := c.Check(context.Background(), ds, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got0(results)["annotation: Faults [anno]"]; !ok {
				t.Errorf("the annotation query was not checked")
			}
			if got, want := len(results), 6; got != want {
				t.Fatalf("got %d results, want %d (4 targets + 1 variable + 1 annotation)", got, want)
			}
			got := got0(results)
			for key, r := range got {
				wantErr, wantFail := tc.wantFailed[key]
				if r.Failed() != wantFail {
					t.Errorf("%s: failed = %v (err %v), want %v", key, r.Failed(), r.Err, wantFail)
				}
				if wantFail && wantErr != nil && !errors.Is(r.Err, wantErr) {
					t.Errorf("%s: err = %v, want %v", key, r.Err, wantErr)
				}
			}
			var sb strings.Builder
			n := Report(&sb, results, false)
			if n != len(tc.wantFailed) {
				t.Errorf("Report counted %d failures, want %d:\n%s", n, len(tc.wantFailed), sb.String())
			}
			if !strings.Contains(sb.String(), "FAIL Test (test.json) / Errors [A]") || !strings.Contains(sb.String(), "broken query") {
				t.Errorf("report does not name dashboard, panel and expression:\n%s", sb.String())
			}
		})
	}

	// Every expression reached Prometheus with its variables substituted.
	for _, e := range fp.exprs {
		if strings.Contains(e, "$") || strings.Contains(e, "[[") {
			t.Errorf("expression sent with a variable left in it: %s", e)
		}
	}
	wantSent := []string{
		`sum(rate(up{job=~".*"}[1m]))`,
		`nothing_total{job=~".*"}`,
		`histogram_quantile(0.99, rate(histo[15s]))`,
		`count by (instance) (up{job=~".*"})`,
	}
	for _, w := range wantSent {
		found := false
		for _, e := range fp.exprs {
			found = found || e == w
		}
		if !found {
			t.Errorf("Prometheus never got %q; got %q", w, fp.exprs)
		}
	}
}

func got0(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Query.Panel+" ["+r.Query.RefID+"]"] = r
	}
	return m
}

func TestCheckPrometheusDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ds, err := LoadDir(writeDashboard(t, testDashboard))
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{URL: url, Timeout: 2 * time.Second}
	if _, err := c.Check(context.Background(), ds, Options{}); err == nil {
		t.Fatal("got no error from a check against a closed port")
	}
}

func TestSeriesDecoding(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       int
		wantErr    bool
	}{
		{"ok/matrix", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]},{"metric":{},"values":[[1,"2"]]}]}}`, 200, 2, false},
		{"ok/native histograms", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,{"count":"1"}]]}]}}`, 200, 1, false},
		{"ok/empty", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 200, 0, false},
		{"ok/series without points", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]}]}}`, 200, 0, false},
		{"err/api error", `{"status":"error","errorType":"bad_data","error":"parse error"}`, 400, 0, true},
		{"err/not the API", `<html>proxy error</html>`, 502, 0, true},
		{"err/timeout", `{"status":"error","errorType":"timeout","error":"query timed out"}`, 503, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := &Checker{URL: srv.URL}
			got, err := c.Series(context.Background(), "up")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %d series, want %d", got, tc.want)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"job": ".*", "q": "0.99", "datasource": ""}
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"ok/dollar", `up{job=~"$job"}`, `up{job=~".*"}`, false},
		{"ok/braces and format", `up{job=~"${job:regex}"}`, `up{job=~".*"}`, false},
		{"ok/brackets", `up{job=~"[[job]]"}`, `up{job=~".*"}`, false},
		{"ok/builtins", `rate(x[$__rate_interval]) + rate(x[$__interval]) + increase(x[$__range])`, `rate(x[1m]) + rate(x[15s]) + increase(x[15m])`, false},
		{"ok/custom", `histogram_quantile($q, x)`, `histogram_quantile(0.99, x)`, false},
		{"ok/no variables", `sum(up)`, `sum(up)`, false},
		{"err/unknown variable", `up{job=~"$nojob"}`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Substitute(tc.in, vars, Options{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLint(t *testing.T) {
	good := writeDashboard(t, testDashboard)
	d, err := LoadFile(filepath.Join(good, "test.json"))
	if err != nil {
		t.Fatal(err)
	}
	if probs := Lint(d); len(probs) != 0 {
		t.Fatalf("lint of a good dashboard: %q", probs)
	}

	var raw map[string]any
	if err := json.Unmarshal([]byte(testDashboard), &raw); err != nil {
		t.Fatal(err)
	}
	panels := raw["panels"].([]any)
	p0 := panels[0].(map[string]any)
	p1 := panels[1].(map[string]any)
	p0["datasource"] = map[string]any{"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
	p1["id"] = 1.0
	p1["targets"] = []any{}
	nested := panels[2].(map[string]any)["panels"].([]any)[0].(map[string]any)
	nested["targets"] = []any{map[string]any{"refId": "A", "expr": `up{instance="orders"}`}}
	b, _ := json.Marshal(raw)
	d, err = LoadFile(filepath.Join(writeDashboard(t, string(b)), "test.json"))
	if err != nil {
		t.Fatal(err)
	}
	probs := strings.Join(Lint(d), "\n")
	for _, want := range []string{
		`panel "Good": datasource`,
		`panel id 1 used by "Good" and "Errors"`,
		`panel "Errors" has no target`,
		`hard-coded instance="orders"`,
	} {
		if !strings.Contains(probs, want) {
			t.Errorf("lint missed %q; got:\n%s", want, probs)
		}
	}
}
