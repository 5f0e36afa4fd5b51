// Package dashcheck proves Grafana dashboards against a live Prometheus: it
// loads every dashboard JSON file, extracts every query (panel targets,
// panels nested in rows, annotation queries), substitutes the template
// variables the way Grafana would, evaluates each query through the
// Prometheus HTTP API and reports every query that errors or returns no
// series, naming the dashboard, the panel and the expression.
//
// It only reads: it must never write to Prometheus or to the dashboards.
package dashcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Dashboard is the part of a Grafana dashboard JSON model the check reads.
type Dashboard struct {
	File          string     `json:"-"`
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	SchemaVersion int        `json:"schemaVersion"`
	Panels        []Panel    `json:"panels"`
	Templating    Templating `json:"templating"`
	Annotations   struct {
		List []Annotation `json:"list"`
	} `json:"annotations"`
}

// Panel is one panel; rows carry their collapsed panels in Panels.
type Panel struct {
	ID         int             `json:"id"`
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
	Targets    []Target        `json:"targets"`
	Panels     []Panel         `json:"panels,omitempty"`
}

// Target is one query of a panel.
type Target struct {
	RefID        string          `json:"refId"`
	Expr         string          `json:"expr"`
	LegendFormat string          `json:"legendFormat,omitempty"`
	Datasource   json.RawMessage `json:"datasource,omitempty"`
	Hide         bool            `json:"hide,omitempty"`
}

// Annotation is an annotation query (e.g. fault windows).
type Annotation struct {
	Name       string          `json:"name"`
	Enable     bool            `json:"enable"`
	Expr       string          `json:"expr"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
	BuiltIn    int             `json:"builtIn,omitempty"`
}

// Templating holds the dashboard variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is one template variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"` // datasource, query, custom, constant, interval, textbox
	Query      json.RawMessage `json:"query,omitempty"`
	Current    Current         `json:"current"`
	IncludeAll bool            `json:"includeAll,omitempty"`
	AllValue   string          `json:"allValue,omitempty"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
}

// Current is a variable's selected value.
type Current struct {
	Text  any `json:"text,omitempty"`
	Value any `json:"value,omitempty"`
}

// Query is one expression to prove, with where it comes from.
type Query struct {
	Dashboard string // title (file)
	Panel     string // panel title, "row / panel" for nested ones, or "annotation: NAME"
	PanelID   int
	RefID     string
	Raw       string // as written in the dashboard
	Expr      string // variables substituted
}

func (q Query) String() string {
	return fmt.Sprintf("%s / %s [%s]: %s", q.Dashboard, q.Panel, q.RefID, q.Raw)
}

// LoadDir reads every *.json file of dir as a dashboard, sorted by file name.
func LoadDir(dir string) ([]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("dashcheck: no *.json dashboards in %s", dir)
	}
	sort.Strings(files)
	out := make([]Dashboard, 0, len(files))
	for _, f := range files {
		d, err := LoadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// LoadFile reads one dashboard.
func LoadFile(path string) (Dashboard, error) {
	var d Dashboard
	b, err := os.ReadFile(path)
	if err != nil {
		return d, fmt.Errorf("read dashboard: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	d.File = filepath.Base(path)
	if d.Title == "" {
		return d, fmt.Errorf("dashboard %s: no title", path)
	}
	return d, nil
}

// AllPanels returns every panel, with the panels of rows flattened after
// their row. Titles of nested panels are prefixed with the row's title.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func(prefix string, ps []Panel)
	walk = func(prefix string, ps []Panel) {
		for _, p := range ps {
			q := p
			if prefix != "" {
				q.Title = prefix + " / " + p.Title
			}
			out = append(out, q)
			if len(p.Panels) > 0 {
				walk(q.Title, p.Panels)
			}
		}
	}
	walk("", d.Panels)
	return out
}

// Options tune how variables are substituted.
type Options struct {
	// RateInterval replaces $__rate_interval (Grafana: max(4 x scrape, interval)).
	RateInterval string
	// Interval replaces $__interval and $__interval_ms's duration.
	Interval string
	// Range replaces $__range.
	Range string
}

func (o Options) withDefaults() Options {
	if o.RateInterval == "" {
		o.RateInterval = "1m"
	}
	if o.Interval == "" {
		o.Interval = "15s"
	}
	if o.Range == "" {
		o.Range = "15m"
	}
	return o
}

// Queries returns every expression of the dashboard: each panel target
// (hidden ones too: they feed expressions) and each enabled annotation query,
// with variables substituted.
func (d Dashboard) Queries(o Options) ([]Query, error) {
	o = o.withDefaults()
	vars := d.variableValues()
	name := d.Title
	if d.File != "" {
		name = fmt.Sprintf("%s (%s)", d.Title, d.File)
	}
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				continue
			}
			e, err := Substitute(t.Expr, vars, o)
			if err != nil {
				return nil, fmt.Errorf("%s / %s [%s]: %w", name, p.Title, t.RefID, err)
			}
			out = append(out, Query{Dashboard: name, Panel: p.Title, PanelID: p.ID, RefID: t.RefID, Raw: t.Expr, Expr: e})
		}
	}
	for _, v := range d.Templating.List {
		expr, ok := v.labelValuesExpr()
		if !ok {
			continue
		}
		e, err := Substitute(expr, vars, o)
		if err != nil {
			return nil, fmt.Errorf("%s / variable %s: %w", name, v.Name, err)
		}
		out = append(out, Query{Dashboard: name, Panel: "variable: " + v.Name, RefID: "var", Raw: v.queryString(), Expr: e})
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 || strings.TrimSpace(a.Expr) == "" {
			continue
		}
		e, err := Substitute(a.Expr, vars, o)
		if err != nil {
			return nil, fmt.Errorf("%s / annotation %s: %w", name, a.Name, err)
		}
		out = append(out, Query{Dashboard: name, Panel: "annotation: " + a.Name, RefID: "anno", Raw: a.Expr, Expr: e})
	}
	return out, nil
}

// variableValues maps each variable to the value a check uses: "All" (or a
// query variable, whose values depend on the data) becomes its allValue or
// ".*"; custom, constant, interval and textbox variables keep their current
// value. Datasource variables are not part of an expression.
func (d Dashboard) variableValues() map[string]string {
	m := map[string]string{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			m[v.Name] = ""
		case "query":
			if v.AllValue != "" {
				m[v.Name] = v.AllValue
			} else {
				m[v.Name] = ".*"
			}
		default:
			cur := currentValue(v.Current.Value)
			if cur == "" || cur == "$__all" {
				if v.AllValue != "" {
					cur = v.AllValue
				} else {
					cur = ".*"
				}
			}
			m[v.Name] = cur
		}
	}
	return m
}

func currentValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				parts = append(parts, s)
			}
		}
		if len(parts) == 1 {
			return parts[0]
		}
		for _, p := range parts {
			if p == "$__all" {
				return "$__all"
			}
		}
		return strings.Join(parts, "|")
	}
	return ""
}

// labelValues matches Grafana's label_values(SELECTOR, LABEL).
var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// queryString is a query variable's query, whether stored as a string or as
// the {"query": ...} object of newer Grafana versions.
func (v Variable) queryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// labelValuesExpr turns a label_values(SELECTOR, LABEL) variable into the
// expression that has one series per value the variable would offer, so a
// variable with no values fails the check like an empty panel.
func (v Variable) labelValuesExpr() (string, bool) {
	if v.Type != "query" {
		return "", false
	}
	m := labelValues.FindStringSubmatch(v.queryString())
	if m == nil {
		return "", false
	}
	return fmt.Sprintf("count by (%s) (%s)", m[2], strings.TrimSpace(m[1])), true
}

// varRef matches $name, ${name}, ${name:format} and [[name]].
var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)`)

// Substitute replaces Grafana's built-in and the dashboard's variables in expr.
// An unknown variable is an error: Grafana would send it to Prometheus as is.
func Substitute(expr string, vars map[string]string, o Options) (string, error) {
	o = o.withDefaults()
	builtin := map[string]string{
		"__rate_interval": o.RateInterval,
		"__interval":      o.Interval,
		"__range":         o.Range,
		"__range_s":       fmt.Sprint(seconds(o.Range)),
		"__interval_ms":   fmt.Sprint(seconds(o.Interval) * 1000),
		"__range_ms":      fmt.Sprint(seconds(o.Range) * 1000),
	}
	var bad []string
	out := varRef.ReplaceAllStringFunc(expr, func(s string) string {
		m := varRef.FindStringSubmatch(s)
		name := m[1] + m[2] + m[3]
		if v, ok := builtin[name]; ok {
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		bad = append(bad, name)
		return s
	})
	if len(bad) > 0 {
		return out, fmt.Errorf("unknown template variable(s) %s", strings.Join(bad, ", "))
	}
	return out, nil
}

var durRe = regexp.MustCompile(`^(\d+)(ms|s|m|h|d)$`)

func seconds(d string) int {
	m := durRe.FindStringSubmatch(d)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	switch m[2] {
	case "ms":
		return n / 1000
	case "m":
		return n * 60
	case "h":
		return n * 3600
	case "d":
		return n * 86400
	}
	return n
}
