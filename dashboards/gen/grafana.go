package main

// obj is a JSON object of the Grafana dashboard model.
type obj = map[string]any

// ds is every panel's, target's and annotation's datasource: the templated one.
var ds = obj{"type": "prometheus", "uid": "${datasource}"}

// target is one query of a panel.
type target struct {
	expr, legend string
	exemplar     bool // ask for exemplars (correlation ids on latency histograms)
}

func t(expr, legend string) target { return target{expr: expr, legend: legend} }

// te is a target that also draws exemplars.
func te(expr, legend string) target { return target{expr: expr, legend: legend, exemplar: true} }

// panel is a panel under construction.
type panel struct {
	title, desc, typ, unit string
	width, height          int
	targets                []target
	stack                  bool
	thresholds             []float64 // drawn as dashed lines
	faultOverlay           bool      // shade series named "fault ..." as windows
	min                    *float64
	mappings               []obj
	options                obj
}

func ts(title, unit, desc string, ts ...target) *panel {
	return &panel{title: title, desc: desc, typ: "timeseries", unit: unit, width: 12, height: 8, targets: ts}
}

func (p *panel) stacked() *panel              { p.stack = true; return p }
func (p *panel) line(v ...float64) *panel     { p.thresholds = append(p.thresholds, v...); return p }
func (p *panel) faults() *panel               { p.faultOverlay = true; return p }
func (p *panel) size(w, h int) *panel         { p.width, p.height = w, h; return p }
func (p *panel) kind(typ string) *panel       { p.typ = typ; return p }
func (p *panel) withMappings(m ...obj) *panel { p.mappings = m; return p }
func (p *panel) withOptions(o obj) *panel     { p.options = o; return p }
func (p *panel) floor(v float64) *panel       { p.min = &v; return p }

// row is a row header followed by its panels.
type row struct {
	title  string
	panels []*panel
}

// variable kinds.
func dsVar() obj {
	return obj{
		"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
		"current": obj{"selected": false, "text": "default", "value": "default"},
		"hide":    0, "refresh": 1, "regex": "", "options": []any{},
	}
}

// queryVar is a multi-select variable over a label's values, "All" by default.
func queryVar(name, label, query string) obj {
	return obj{
		"name": name, "label": label, "type": "query",
		"datasource": ds,
		"definition": query,
		"query":      query,
		"includeAll": true, "multi": true, "allValue": ".*",
		"current": obj{"selected": true, "text": []any{"All"}, "value": []any{"$__all"}},
		"refresh": 2, "sort": 1, "hide": 0, "regex": "", "options": []any{},
	}
}

// customVar is a single-value variable with fixed choices, the first selected.
func customVar(name, label string, values ...string) obj {
	var opts []any
	for i, v := range values {
		opts = append(opts, obj{"selected": i == 0, "text": v, "value": v})
	}
	q := ""
	for i, v := range values {
		if i > 0 {
			q += ","
		}
		q += v
	}
	return obj{
		"name": name, "label": label, "type": "custom", "query": q,
		"current": obj{"selected": true, "text": values[0], "value": values[0]},
		"options": opts, "hide": 0, "multi": false, "includeAll": false,
	}
}

// faultExpr is the fault windows' series (1 while a fault is active), of
// the selected chaos run when the dashboard has a run variable.
func (d dashboard) faultExpr() string {
	for _, v := range d.vars {
		if v["name"] == "run" {
			return `max by (fault) (stampede_chaos_fault_active{run=~"$run"})`
		}
	}
	return `max by (fault) (stampede_chaos_fault_active)`
}

// faultAnnotation shades every chaos fault window on every time panel.
func faultAnnotation(expr string) obj {
	return obj{
		"name": "Fault windows", "enable": true, "hide": false,
		"datasource":      ds,
		"iconColor":       "rgba(245, 54, 54, 0.25)",
		"expr":            expr + " > 0",
		"step":            "2s",
		"titleFormat":     "fault: {{fault}}",
		"tagKeys":         "fault",
		"textFormat":      "{{fault}} active",
		"useValueForTime": false,
	}
}

func builtinAnnotation() obj {
	return obj{
		"builtIn": 1, "datasource": obj{"type": "grafana", "uid": "-- Grafana --"},
		"enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)",
		"name": "Annotations & Alerts", "type": "dashboard",
	}
}

type dashboard struct {
	uid, title, desc string
	vars             []obj
	faultWindows     bool
	rows             []row
}

// model renders the dashboard JSON model.
func (d dashboard) model() obj {
	annos := []any{builtinAnnotation()}
	if d.faultWindows {
		annos = append(annos, faultAnnotation(d.faultExpr()))
	}
	vars := []any{dsVar()}
	for _, v := range d.vars {
		vars = append(vars, v)
	}
	var panels []any
	id, y := 0, 0
	for _, r := range d.rows {
		id++
		panels = append(panels, obj{
			"id": id, "type": "row", "title": r.title, "collapsed": false,
			"gridPos": obj{"h": 1, "w": 24, "x": 0, "y": y}, "panels": []any{},
		})
		y++
		x, rowH := 0, 0
		for _, p := range r.panels {
			if x+p.width > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			id++
			panels = append(panels, p.model(id, x, y, d.faultExpr()))
			x += p.width
			if p.height > rowH {
				rowH = p.height
			}
		}
		y += rowH
	}
	return obj{
		"uid": d.uid, "title": d.title, "description": d.desc,
		"tags":          []any{"stampede"},
		"schemaVersion": 39, "version": 1, "editable": true,
		"graphTooltip": 1, "timezone": "", "fiscalYearStartMonth": 0,
		"liveNow": false, "refresh": "5s",
		"time":        obj{"from": "now-30m", "to": "now"},
		"timepicker":  obj{"refresh_intervals": []any{"2s", "5s", "10s", "30s", "1m"}},
		"annotations": obj{"list": annos},
		"templating":  obj{"list": vars},
		"links": []any{obj{
			"title": "Stampede", "type": "dashboards", "tags": []any{"stampede"},
			"asDropdown": true, "includeVars": true, "keepTime": true,
			"icon": "external link", "tooltip": "", "targetBlank": false, "url": "",
		}},
		"panels": panels,
	}
}

func (p *panel) model(id, x, y int, faultExpr string) obj {
	var targets []any
	for i, tg := range p.targets {
		targets = append(targets, obj{
			"refId": string(rune('A' + i)), "datasource": ds,
			"expr": tg.expr, "legendFormat": tg.legend, "range": true, "editorMode": "code",
			"exemplar": tg.exemplar,
		})
	}
	steps := []any{obj{"color": "green", "value": nil}}
	for _, v := range p.thresholds {
		steps = append(steps, obj{"color": "red", "value": v})
	}
	defaults := obj{
		"unit":       p.unit,
		"thresholds": obj{"mode": "absolute", "steps": steps},
		"color":      obj{"mode": "palette-classic"},
		"mappings":   []any{},
	}
	if p.min != nil {
		defaults["min"] = *p.min
	}
	for _, m := range p.mappings {
		defaults["mappings"] = append(defaults["mappings"].([]any), m)
	}
	var overrides []any
	options := obj{}
	switch p.typ {
	case "timeseries":
		stacking := "none"
		fill := 10
		if p.stack {
			stacking, fill = "normal", 60
		}
		thr := "off"
		if len(p.thresholds) > 0 {
			thr = "dashed"
		}
		defaults["custom"] = obj{
			"drawStyle": "line", "lineInterpolation": "linear", "lineWidth": 1,
			"fillOpacity": fill, "showPoints": "never", "spanNulls": false,
			"stacking":        obj{"mode": stacking, "group": "A"},
			"thresholdsStyle": obj{"mode": thr},
			"axisPlacement":   "auto",
		}
		options = obj{
			"legend":  obj{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []any{"mean", "max", "lastNotNull"}},
			"tooltip": obj{"mode": "multi", "sort": "desc"},
		}
		if p.faultOverlay {
			targets = append(targets, obj{
				"refId": string(rune('A' + len(p.targets))), "datasource": ds,
				"expr": faultExpr, "legendFormat": "fault {{fault}}",
				"range": true, "editorMode": "code",
			})
			overrides = append(overrides, obj{
				"matcher": obj{"id": "byRegexp", "options": "^fault .*"},
				"properties": []any{
					obj{"id": "unit", "value": "none"},
					obj{"id": "min", "value": 0},
					obj{"id": "max", "value": 1},
					obj{"id": "custom.axisPlacement", "value": "hidden"},
					obj{"id": "custom.lineInterpolation", "value": "stepAfter"},
					obj{"id": "custom.fillOpacity", "value": 25},
					obj{"id": "custom.lineWidth", "value": 0},
					obj{"id": "custom.stacking", "value": obj{"mode": "none", "group": "A"}},
					obj{"id": "color", "value": obj{"mode": "fixed", "fixedColor": "red"}},
				},
			})
		}
	case "stat":
		options = obj{
			"reduceOptions": obj{"calcs": []any{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "background", "graphMode": "area", "justifyMode": "auto",
			"orientation": "auto", "textMode": "auto", "wideLayout": true,
			"showPercentChange": false, "percentChangeColorMode": "standard",
		}
	case "state-timeline":
		options = obj{
			"mergeValues": true, "showValue": "never", "alignValue": "left", "rowHeight": 0.9,
			"legend":  obj{"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []any{}},
			"tooltip": obj{"mode": "single", "sort": "none"},
		}
		defaults["custom"] = obj{"fillOpacity": 70, "lineWidth": 0}
	}
	for k, v := range p.options {
		options[k] = v
	}
	if overrides == nil {
		overrides = []any{}
	}
	out := obj{
		"id": id, "type": p.typ, "title": p.title, "description": p.desc,
		"datasource":  ds,
		"gridPos":     obj{"h": p.height, "w": p.width, "x": x, "y": y},
		"targets":     targets,
		"fieldConfig": obj{"defaults": defaults, "overrides": overrides},
		"options":     options,
	}
	return out
}

// sel is the label selector every scraped metric takes: the job and instance variables.
const sel = `job=~"$job", instance=~"$instance"`

// m is a metric selector with the job and instance variables and any
// further matchers: m("x_total", `code=~"5.."`).
func m(metric string, matchers ...string) string {
	s := metric + `{job=~"$job", instance=~"$instance"`
	for _, x := range matchers {
		s += ", " + x
	}
	return s + "}"
}
