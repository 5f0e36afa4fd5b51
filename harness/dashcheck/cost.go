package dashcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Instant evaluates expr at the checker's End (default now).
func (c *Checker) Instant(ctx context.Context, expr string) ([]Sample, error) {
	at := c.End
	if at.IsZero() {
		at = time.Now()
	}
	v := url.Values{}
	v.Set("query", expr)
	v.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/api/v1/query", strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("query prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus answered %s with no API response: %.200s", resp.Status, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus: %s for an instant query of %s, want vector", r.Data.ResultType, expr)
	}
	var ss []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &ss); err != nil {
		return nil, err
	}
	out := make([]Sample, 0, len(ss))
	for _, s := range ss {
		str, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			continue
		}
		out = append(out, Sample{Labels: s.Metric, Value: f})
	}
	return out, nil
}

// Cost is what scraping costs: Prometheus's own CPU and memory over a
// window, and the series every process exposes.
type Cost struct {
	Window          time.Duration
	CPUMax, CPUAvg  float64 // cores, from 30 s rates
	RSSMax          float64 // bytes
	HeadSeriesMax   float64
	SamplesPerSec   float64 // appended to the head, scrapes and remote write
	PerTarget       []TargetSeries
	RemoteWriteSeen map[string]float64 // "k6", "chaos" -> series seen in the window
}

// TargetSeries is the series one scraped process exposes.
type TargetSeries struct {
	Job, Instance string
	Series        float64 // max samples per scrape in the window
}

// Cost measures Prometheus over the last window (ending at End or now).
func (c *Checker) Cost(ctx context.Context, window time.Duration) (Cost, error) {
	w := promDur(window)
	out := Cost{Window: window, RemoteWriteSeen: map[string]float64{}}
	scalar := func(expr string) (float64, error) {
		s, err := c.Instant(ctx, expr)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", expr, err)
		}
		if len(s) == 0 {
			return 0, nil
		}
		return s[0].Value, nil
	}
	self := `job="prometheus"`
	var err error
	for _, q := range []struct {
		dst  *float64
		expr string
	}{
		{&out.CPUMax, `max(max_over_time(rate(process_cpu_seconds_total{` + self + `}[30s])[` + w + `:2s]))`},
		{&out.CPUAvg, `max(rate(process_cpu_seconds_total{` + self + `}[` + w + `]))`},
		{&out.RSSMax, `max(max_over_time(process_resident_memory_bytes{` + self + `}[` + w + `]))`},
		{&out.HeadSeriesMax, `max(max_over_time(prometheus_tsdb_head_series{` + self + `}[` + w + `]))`},
		{&out.SamplesPerSec, `max(rate(prometheus_tsdb_head_samples_appended_total{` + self + `}[` + w + `]))`},
	} {
		if *q.dst, err = scalar(q.expr); err != nil {
			return out, err
		}
	}
	targets, err := c.Instant(ctx, `max by (job, instance) (max_over_time(scrape_samples_scraped[`+w+`]))`)
	if err != nil {
		return out, err
	}
	for _, s := range targets {
		out.PerTarget = append(out.PerTarget, TargetSeries{Job: s.Labels["job"], Instance: s.Labels["instance"], Series: s.Value})
	}
	sort.Slice(out.PerTarget, func(i, j int) bool {
		a, b := out.PerTarget[i], out.PerTarget[j]
		if a.Job != b.Job {
			return a.Job < b.Job
		}
		return a.Instance < b.Instance
	})
	for name, re := range map[string]string{"k6": "k6_.*", "chaos": "stampede_chaos_.*"} {
		if out.RemoteWriteSeen[name], err = scalar(`count(last_over_time({__name__=~"` + re + `"}[` + w + `]))`); err != nil {
			return out, err
		}
	}
	return out, nil
}

// WriteMarkdown prints the cost as a small Markdown report.
func (c Cost) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Prometheus over the last %s:\n\n", c.Window)
	fmt.Fprintf(w, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(w, "| CPU, max of 30 s rates | %.3f cores |\n", c.CPUMax)
	fmt.Fprintf(w, "| CPU, average | %.3f cores |\n", c.CPUAvg)
	fmt.Fprintf(w, "| resident memory, max | %.0f MiB |\n", c.RSSMax/(1<<20))
	fmt.Fprintf(w, "| head series, max | %.0f |\n", c.HeadSeriesMax)
	fmt.Fprintf(w, "| samples appended | %.0f /s |\n", c.SamplesPerSec)
	fmt.Fprintf(w, "| remote-written series seen (k6) | %.0f |\n", c.RemoteWriteSeen["k6"])
	fmt.Fprintf(w, "| remote-written series seen (chaos) | %.0f |\n", c.RemoteWriteSeen["chaos"])
	fmt.Fprintf(w, "\nSeries per scraped process (max samples per scrape):\n\n| job | instance | series |\n|---|---|---|\n")
	var total float64
	for _, t := range c.PerTarget {
		fmt.Fprintf(w, "| %s | %s | %.0f |\n", t.Job, t.Instance, t.Series)
		total += t.Series
	}
	fmt.Fprintf(w, "| **all** | | **%.0f** |\n", total)
}

// promDur formats a duration the way PromQL reads it (whole seconds).
func promDur(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s) + "s"
}
