package dashcheck

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// noTargets are panel types that draw no query.
var noTargets = map[string]bool{"row": true, "text": true, "news": true, "dashlist": true}

// hardInstance finds a label matcher on instance or pod with a literal value
// (instance="relay"): dashboards must select through variables instead.
var hardInstance = regexp.MustCompile(`\b(instance|pod|host)\s*(=~?|!=|!~)\s*"([^"$]+)"`)

// Lint checks what a dashboard must be before any data is involved: every
// panel that draws data has at least one target with an expression, panel ids
// are unique, every panel and target uses the templated datasource, the
// dashboard has a Prometheus datasource variable, and no expression names an
// instance literally. It returns one message per problem.
func Lint(d Dashboard) []string {
	var probs []string
	add := func(format string, args ...any) {
		probs = append(probs, fmt.Sprintf("%s (%s): ", d.Title, d.File)+fmt.Sprintf(format, args...))
	}
	if d.UID == "" {
		add("no uid")
	}
	if d.SchemaVersion < 36 {
		add("schemaVersion %d: want >= 36", d.SchemaVersion)
	}
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			var q string
			_ = json.Unmarshal(v.Query, &q)
			if q == "prometheus" {
				dsVar = v.Name
			}
		}
	}
	if dsVar == "" {
		add("no datasource template variable of type prometheus")
	}
	ids := map[int]string{}
	for _, p := range d.AllPanels() {
		if p.ID == 0 {
			add("panel %q has no id", p.Title)
		} else if prev, dup := ids[p.ID]; dup {
			add("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if noTargets[p.Type] {
			continue
		}
		if p.Type == "" {
			add("panel %q has no type", p.Title)
		}
		n := 0
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) != "" {
				n++
			}
			if len(t.Datasource) > 0 && !templated(t.Datasource, dsVar) {
				add("panel %q target %s: datasource %s is not ${%s}", p.Title, t.RefID, t.Datasource, dsVar)
			}
			if m := hardInstance.FindStringSubmatch(t.Expr); m != nil {
				add("panel %q target %s: hard-coded %s", p.Title, t.RefID, m[0])
			}
		}
		if n == 0 {
			add("panel %q has no target with an expression", p.Title)
		}
		if !templated(p.Datasource, dsVar) {
			add("panel %q: datasource %s is not ${%s}", p.Title, p.Datasource, dsVar)
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		if !templated(a.Datasource, dsVar) {
			add("annotation %q: datasource %s is not ${%s}", a.Name, a.Datasource, dsVar)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && !templated(v.Datasource, dsVar) {
			add("variable %q: datasource %s is not ${%s}", v.Name, v.Datasource, dsVar)
		}
	}
	return probs
}

// templated reports whether a datasource reference (a string or
// {"type","uid"}) points at the datasource variable.
func templated(raw json.RawMessage, dsVar string) bool {
	if len(raw) == 0 || dsVar == "" {
		return false
	}
	ok := func(s string) bool { return s == "$"+dsVar || s == "${"+dsVar+"}" }
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return ok(s)
	}
	var ref struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	if json.Unmarshal(raw, &ref) != nil {
		return false
	}
	return ref.Type == "prometheus" && ok(ref.UID)
}
