package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/stampede-dev/stampede/harness/verify"
)

// Chart geometry.
const (
	chartW, chartH         = 900, 220
	padL, padR, padT, padB = 60, 20, 20, 30
)

// line is one series of a chart.
type line struct {
	name  string
	color string
	xs    []time.Time
	ys    []float64
}

// window is a shaded span of a chart.
type window struct {
	name     string
	from, to time.Time
	consumer bool
}

// timeChart draws series against time, with fault windows shaded and an
// optional threshold line. yMax 0 scales to the data.
func timeChart(title, unit string, lines []line, wins []window, from, to time.Time, threshold float64, yMax float64) template.HTML {
	if !to.After(from) {
		return template.HTML(`<p class="empty">` + template.HTMLEscapeString(title) + `: no data</p>`)
	}
	if yMax == 0 {
		for _, l := range lines {
			for _, y := range l.ys {
				yMax = math.Max(yMax, y)
			}
		}
		yMax = math.Max(yMax, threshold*1.2)
		if yMax == 0 {
			yMax = 1
		}
		yMax = niceCeil(yMax)
	}
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 { return padL + (t.Sub(from).Seconds()/span)*(chartW-padL-padR) }
	y := func(v float64) float64 {
		v = math.Min(v, yMax)
		return padT + (1-v/yMax)*(chartH-padT-padB)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(title))
	for i, w := range wins {
		x0, x1 := math.Max(x(w.from), padL), math.Min(x(w.to), chartW-padR)
		if x1 <= x0 {
			continue
		}
		cls := "fault"
		if w.consumer {
			cls = "fault consumer"
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>`,
			cls, x0, padT, x1-x0, chartH-padT-padB, template.HTMLEscapeString(w.name))
		// Neighbouring windows' labels on staggered rows, so they stay legible.
		fmt.Fprintf(&b, `<text class="wlabel" x="%.1f" y="%d">%s</text>`, x0+2, padT+10+11*(i%3), template.HTMLEscapeString(w.name))
	}
	// axes and grid
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-4, y(v)+4, fmtNum(v))
	}
	for i := 0; i <= 6; i++ {
		t := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / 6))
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">+%s</text>`, x(t), chartH-8, t.Sub(from).Round(time.Second))
	}
	fmt.Fprintf(&b, `<text class="axis" x="4" y="12">%s</text>`, template.HTMLEscapeString(unit))
	if threshold > 0 {
		fmt.Fprintf(&b, `<line class="threshold" x1="%d" x2="%d" y1="%.1f" y2="%.1f"><title>limit %s</title></line>`,
			padL, chartW-padR, y(threshold), y(threshold), fmtNum(threshold))
	}
	for _, l := range lines {
		var pts []string
		for i := range l.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(l.xs[i]), y(l.ys[i])))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`,
				l.color, strings.Join(pts, " "), template.HTMLEscapeString(l.name))
		}
	}
	// legend, top right, above the plot
	lx := chartW - padR
	for _, l := range lines {
		lx -= 24 + 6*len(l.name)
	}
	for _, l := range lines {
		fmt.Fprintf(&b, `<rect x="%d" y="3" width="10" height="10" fill="%s"/><text class="axis" x="%d" y="12">%s</text>`,
			lx, l.color, lx+14, template.HTMLEscapeString(l.name))
		lx += 24 + 6*len(l.name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// histogram draws counts of durations in equal bins up to the larger of the
// data's maximum and limit, with the limit marked.
func histogram(ds []time.Duration, limit time.Duration) template.HTML {
	if len(ds) == 0 {
		return `<p class="empty">no compensated orders</p>`
	}
	hi := limit
	for _, d := range ds {
		if d > hi {
			hi = d
		}
	}
	const bins = 30
	width := hi / bins
	if width <= 0 {
		width = time.Millisecond
	}
	counts := make([]int, bins+1)
	top := 0
	for _, d := range ds {
		// A report is written whatever the figures hold: a negative time
		// (a bug in whoever measured it) is drawn in the first bin.
		i := min(max(int(d/width), 0), bins)
		counts[i]++
		if counts[i] > top {
			top = counts[i]
		}
	}
	bw := float64(chartW-padL-padR) / float64(bins+1)
	h := float64(chartH - padT - padB)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="compensation time histogram">`, chartW, chartH)
	for i, c := range counts {
		bh := h * float64(c) / float64(top)
		lo := width * time.Duration(i)
		cls := "bar"
		if lo+width > limit {
			cls = "bar over"
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s–%s: %d</title></rect>`,
			cls, padL+float64(i)*bw+1, padT+h-bh, bw-2, bh, lo.Round(time.Millisecond), (lo + width).Round(time.Millisecond), c)
	}
	lx := padL + float64(limit)/float64(width)*bw
	fmt.Fprintf(&b, `<line class="threshold" x1="%.1f" x2="%.1f" y1="%d" y2="%d"><title>limit %s</title></line>`, lx, lx, padT, chartH-padB, limit)
	for i := 0; i <= 5; i++ {
		v := hi * time.Duration(i) / 5
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, padL+float64(v)/float64(width)*bw, chartH-8, v.Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, `<text class="axis" x="4" y="12">orders (max %d per bin)</text></svg>`, top)
	return template.HTML(b.String())
}

func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"ts":  func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"off": func(t, base time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "+" + t.Sub(base).Round(100*time.Millisecond).String()
	},
	"join": strings.Join,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Stampede chaos {{.R.Run}}: {{if .R.Passed}}PASS{{else}}FAIL{{end}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2a7d3a}.fail{background:#b3261e}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border-bottom:1px solid #eee;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecea}code,pre{font:12px ui-monospace,monospace}pre{white-space:pre-wrap;margin:0}
svg.chart{width:100%;height:auto;background:#fcfcfc;border:1px solid #eee}
.grid{stroke:#eee}.axis,.wlabel{font-size:10px;fill:#666}.threshold{stroke:#b3261e;stroke-dasharray:4 3}
.fault{fill:#f4b400;opacity:.18}.fault.consumer{fill:#7b1fa2}.bar{fill:#4a7bd0}.bar.over{fill:#b3261e}
.empty{color:#888;font-style:italic}
</style></head><body>
<h1>Stampede chaos run <code>{{.R.Run}}</code> <span class="verdict {{if .R.Passed}}pass{{else}}fail{{end}}">{{if .R.Passed}}PASS{{else}}FAIL{{end}}</span></h1>
<p>Profile <b>{{.R.Profile}}</b>, seed <b>{{.R.Seed}}</b>, {{.R.Placed}} orders placed, load {{ts .R.LoadStart}}–{{ts .R.LoadEnd}} UTC, wall time {{dur .Wall}}.
<br>Command: <code>{{.R.Command}}</code>
{{with .R.Warmup}}<br>Warm-up before the run (not audited): {{.Rate}} orders/s for {{dur .Duration}}, {{.Placed}} placed, {{.Completed}} completed, {{.Failed}} failed, {{.Rejected}} rejected, {{.NotSettled}} not settled.{{end}}
<br>k6's own report: <a href="{{.R.K6.Report}}">{{.R.K6.Report}}</a> · raw figures: <a href="report.json">report.json</a></p>
{{if .R.Error}}<p class="verdict fail">run error: {{.R.Error}}</p>{{end}}

<h2 id="gates">Gates</h2>
<table><tr><th>gate</th><th>threshold</th><th>value</th><th>verdict</th></tr>
{{range .R.Gates}}<tr{{if not .Pass}} class="bad"{{end}}><td>{{.Name}}</td><td>{{.Threshold}}</td><td>{{.Value}}{{if .Orders}}<br>orders: <code>{{join .Orders ", "}}</code>{{end}}{{if .Detail}}<pre>{{.Detail}}</pre>{{end}}</td><td>{{if .Pass}}pass{{else}}<b>FAIL</b>{{end}}</td></tr>
{{end}}</table>

<h2 id="outcomes">Outcomes</h2>
<table><tr><th>class</th><th>orders</th><th>meaning</th></tr>
{{range .Classes}}<tr{{if .Bad}} class="bad"{{end}}><td>{{.Name}}</td><td class="num">{{.N}}</td><td>{{.Meaning}}</td></tr>
{{end}}</table>
<p>Compensation time (failure decision → last compensation completed): n={{.R.Compensation.N}}, p50 {{dur .R.Compensation.P50}}, p99 {{dur .R.Compensation.P99}}, max {{dur .R.Compensation.Max}}.</p>

<h2 id="rate">Order rate</h2>{{.RateChart}}
<h2 id="latency">Accept latency</h2>{{.LatencyChart}}
<h2 id="lag">Consumer lag (fault windows shaded; purple: consumer faults, excluded from the lag gate until lag recovers)</h2>{{.LagChart}}
<table><tr><th>source</th><th>samples</th><th>p99</th><th>max (outside consumer faults)</th><th>consumer fault recovery</th></tr>
{{range .R.Lag}}<tr><td>{{.Source}}</td><td class="num">{{.Samples}}</td><td class="num">{{dur .P99}}</td><td class="num">{{dur .Max}}</td><td>{{range .Recovery}}{{.Fault}}: max {{dur .MaxLag}}, {{if and (lt .Recovery 0) (not .InterruptedBy)}}<b>{{.Outcome}}</b>{{else}}{{.Outcome}}{{end}}<br>{{end}}</td></tr>
{{end}}</table>
<h2 id="compensation">Compensation time</h2>{{.CompChart}}

<h2 id="faults">Faults</h2>
<table><tr><th>fault</th><th>kind</th><th>target</th><th>planned</th><th>start</th><th>end</th><th>what happened</th></tr>
{{range .R.Faults}}<tr{{if .Error}} class="bad"{{end}}><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{.Target}}</td><td>+{{dur .PlannedAt}} for {{dur .Planned}}</td><td>{{off .Start $.R.LoadStart}}</td><td>{{off .End $.R.LoadStart}}</td><td>{{.Note}}{{if .Detail}}<br>{{.Detail}}{{end}}{{if .Error}}<br><b>{{.Error}}</b>{{end}}</td></tr>
{{end}}</table>

<h2 id="steady">Steady-state hypothesis</h2>
<table><tr><th>probe</th><th>before</th><th>after</th></tr>
{{range .Probes}}<tr{{if not .OK}} class="bad"{{end}}><td>{{.Name}}</td><td>{{.Before}}</td><td>{{.After}}</td></tr>
{{end}}</table>
<h2 id="rollback">Rollbacks</h2>
{{if .R.Rollback}}<ul>{{range .R.Rollback}}<li>{{.}}</li>{{end}}</ul>{{else}}<p class="empty">nothing to roll back</p>{{end}}
{{if .R.Stock}}<h2 id="stock">Stock mismatches</h2><table><tr><th>sku</th><th>start</th><th>held by ok orders</th><th>changed by other clients</th><th>want</th><th>got</th></tr>
{{range .R.Stock}}<tr class="bad"><td>{{.SKU}}</td><td class="num">{{.Start}}</td><td class="num">{{.Held}}</td><td class="num">{{.Others}}</td><td class="num">{{.Want}}</td><td class="num">{{.Got}}</td></tr>{{end}}</table>{{end}}
{{if .R.Gaps}}<h2>Stores that could not be read</h2><ul>{{range .R.Gaps}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Problems}}<h2 id="problems">Orders behind failing gates (first {{len .Problems}})</h2>
<table><tr><th>order</th><th>expected</th><th>class</th><th>status</th><th>why</th></tr>
{{range .Problems}}<tr class="bad"><td><code>{{.OrderID}}</code></td><td>{{.Expect}}</td><td>{{.Class}}</td><td>{{.Status}}</td><td>{{join .Reasons "; "}}</td></tr>
{{end}}</table>{{end}}
<h2>Configuration</h2><table>{{range .Config}}<tr><td>{{.K}}</td><td><code>{{.V}}</code></td></tr>{{end}}</table>
</body></html>
`))

type classRow struct {
	Name, Meaning string
	N             int
	Bad           bool
}

type probeRow struct {
	Name, Before, After string
	OK                  bool
}

type kv struct{ K, V string }

var meanings = []classRow{
	{Name: verify.ClassOK, Meaning: "expected to complete: reserved, captured once, shipped"},
	{Name: verify.ClassCompensated, Meaning: "failed as expected or allowed, and fully undone (refunded, released, cancelled, notified)"},
	{Name: verify.ClassLost, Meaning: "acknowledged but no workflow, or no terminal state", Bad: true},
	{Name: verify.ClassDuplicated, Meaning: "two workflows, captures, shipments or a channel notified twice", Bad: true},
	{Name: verify.ClassInconsistent, Meaning: "stores contradict each other or the expected outcome", Bad: true},
	{Name: verify.ClassUnacked, Meaning: "in the platform though the client saw a timeout (allowed)"},
	{Name: verify.ClassRejected, Meaning: "refused by the API (or timed out) and absent from the platform"},
	{Name: verify.ClassPending, Meaning: "successful so far, waiting for delivery"},
}

// HTML renders the report page.
func HTML(r *Result) ([]byte, error) {
	var wins []window
	for _, f := range r.Faults {
		if f.Start.IsZero() {
			continue
		}
		end := f.End
		if end.IsZero() {
			end = r.LoadEnd
		}
		wins = append(wins, window{name: f.Name, from: f.Start, to: end, consumer: f.Consumer})
	}
	from, to := r.LoadStart, r.LoadEnd
	if len(r.Timeline) > 0 {
		if from.IsZero() || r.Timeline[0].At.Before(from) {
			from = r.Timeline[0].At
		}
		if last := r.Timeline[len(r.Timeline)-1].At.Add(time.Second); last.After(to) {
			to = last
		}
	}
	rate := line{name: "placed/s", color: "#4a7bd0"}
	fail := line{name: "not acked/s", color: "#b3261e"}
	p50 := line{name: "p50 ms", color: "#4a7bd0"}
	p99 := line{name: "p99 ms", color: "#e37400"}
	for _, s := range r.Timeline {
		rate.xs, rate.ys = append(rate.xs, s.At), append(rate.ys, float64(s.Placed))
		fail.xs, fail.ys = append(fail.xs, s.At), append(fail.ys, float64(s.Failed))
		if s.Acked > 0 {
			p50.xs, p50.ys = append(p50.xs, s.At), append(p50.ys, s.P50Ms)
			p99.xs, p99.ys = append(p99.xs, s.At), append(p99.ys, s.P99Ms)
		}
	}
	var lags []line
	colors := []string{"#2a7d3a", "#7b1fa2", "#e37400", "#4a7bd0"}
	srcs := make([]string, 0, len(r.LagSeries))
	for s := range r.LagSeries {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	limit := 100.0 // ms
	if d, err := time.ParseDuration(r.Config["max-lag"]); err == nil && d > 0 {
		limit = d.Seconds() * 1000
	}
	for i, s := range srcs {
		l := line{name: s + " (ms)", color: colors[i%len(colors)]}
		for _, p := range r.LagSeries[s] {
			l.xs, l.ys = append(l.xs, p.At), append(l.ys, float64(p.Lag)/1e6)
		}
		lags = append(lags, l)
	}
	compLimit := 30 * time.Second
	if v, ok := r.Config["max-compensation"]; ok {
		if d, err := time.ParseDuration(v); err == nil {
			compLimit = d
		}
	}
	counts := map[string]int{}
	for k, v := range r.Counts {
		counts[k] = v
	}
	var classes []classRow
	for _, c := range meanings {
		c.N = counts[c.Name]
		c.Bad = c.Bad && c.N > 0
		classes = append(classes, c)
	}
	probes := map[string]*probeRow{}
	var order []string
	for i, list := range [][]Probe{r.SteadyBefore, r.SteadyAfter} {
		for _, p := range list {
			row := probes[p.Name]
			if row == nil {
				row = &probeRow{Name: p.Name, OK: true, Before: "-", After: "-"}
				probes[p.Name] = row
				order = append(order, p.Name)
			}
			v := "ok"
			if !p.OK {
				v = "FAILED"
				row.OK = false
			}
			if p.Detail != "" {
				v += ": " + p.Detail
			}
			if i == 0 {
				row.Before = v
			} else {
				row.After = v
			}
		}
	}
	var prow []probeRow
	for _, n := range order {
		prow = append(prow, *probes[n])
	}
	var cfg []kv
	for k, v := range r.Config {
		cfg = append(cfg, kv{k, v})
	}
	sort.Slice(cfg, func(i, j int) bool { return cfg[i].K < cfg[j].K })
	problems := r.Problems
	if len(problems) > 200 {
		problems = problems[:200]
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, map[string]any{
		"R":            r,
		"Wall":         r.Finished.Sub(r.Started),
		"Classes":      classes,
		"Probes":       prow,
		"Config":       cfg,
		"Problems":     problems,
		"RateChart":    timeChart("order rate", "orders/s", []line{rate, fail}, wins, from, to, 0, 0),
		"LatencyChart": timeChart("accept latency", "ms", []line{p50, p99}, wins, from, to, 0, 0),
		"LagChart":     timeChart("consumer lag", "ms (capped at 10x the limit)", lags, wins, from, to, limit, lagMax(lags, limit)),
		"CompChart":    histogram(r.CompensationTimes, compLimit),
	})
	if err != nil {
		return nil, fmt.Errorf("report: render: %w", err)
	}
	return buf.Bytes(), nil
}

// lagMax caps the lag chart at ten times the limit so a fault's spike does
// not flatten everything under the limit.
func lagMax(lines []line, limit float64) float64 {
	max := limit * 1.5
	for _, l := range lines {
		for _, y := range l.ys {
			max = math.Max(max, y)
		}
	}
	return niceCeil(math.Min(max, limit*10))
}
