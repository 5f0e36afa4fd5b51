package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/stampede-dev/stampede/harness/verify"
)

// Prom queries the stack's Prometheus HTTP API.
type Prom struct {
	Base   string // http://127.0.0.1:9090
	Client *http.Client
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

// QueryRange runs a range query and returns its matrix.
func (p Prom) QueryRange(ctx context.Context, q string, from, to time.Time, step time.Duration) ([]promSeries, error) {
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	v := url.Values{}
	v.Set("query", q)
	v.Set("start", strconv.FormatFloat(float64(from.UnixMilli())/1000, 'f', 3, 64))
	v.Set("end", strconv.FormatFloat(float64(to.UnixMilli())/1000, 'f', 3, 64))
	v.Set("step", strconv.FormatFloat(step.Seconds(), 'f', 3, 64))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Base+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus %s: decode: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus %s: %s", q, body.Error)
	}
	return body.Data.Result, nil
}

// LagHistogramQuery is the orchestrator's own lag histogram, per bucket,
// over short windows.
func LagHistogramQuery(group string, window time.Duration) string {
	return fmt.Sprintf(`sum by (le) (increase(stampede_kafka_consumer_lag_seconds_bucket{group=%q}[%s]))`, group, promDuration(window))
}

func promDuration(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + "s" }

// LagFromHistogram turns per-bucket increases into one lag value per step:
// the upper bound of the highest non-empty bucket, i.e. the maximum at the
// histogram's resolution (its bucket bounds, platform/kafka.LagBuckets).
// A maximum that lands in the bucket ending exactly at limit is recorded
// just under limit: the histogram proves "≤ limit", which is all it can say.
// Steps in which nothing was consumed carry no sample.
func LagFromHistogram(series []promSeries, limit time.Duration) []verify.LagSample {
	type bucket struct {
		le  float64
		val map[int64]float64
	}
	var bs []bucket
	steps := map[int64]bool{}
	for _, s := range series {
		le, err := strconv.ParseFloat(s.Metric["le"], 64)
		if s.Metric["le"] == "+Inf" {
			le, err = math.Inf(1), nil
		}
		if err != nil {
			continue
		}
		b := bucket{le: le, val: map[int64]float64{}}
		for _, v := range s.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil || math.IsNaN(f) {
				continue
			}
			ms := int64(math.Round(ts * 1000))
			b.val[ms] = f
			steps[ms] = true
		}
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	var out []verify.LagSample
	keys := make([]int64, 0, len(steps))
	for k := range steps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, ms := range keys {
		if len(bs) == 0 {
			break
		}
		total := bs[len(bs)-1].val[ms]
		if total < 0.5 {
			continue
		}
		var max float64
		for _, b := range bs {
			if b.val[ms] >= total-0.01 {
				max = b.le
				break
			}
		}
		d := time.Duration(max * float64(time.Second))
		if math.IsInf(max, 1) {
			d = time.Hour // above the highest bucket
		}
		if d == limit {
			d = limit - time.Microsecond
		}
		out = append(out, verify.LagSample{At: time.UnixMilli(ms), Lag: d})
	}
	return out
}

// FaultSeries returns the remote-write series of every fault's state now.
func FaultSeries(run string, active map[string]bool, now time.Time) []Series {
	var out []Series
	for name, on := range active {
		v := 0.0
		if on {
			v = 1
		}
		out = append(out, Series{Labels: map[string]string{"__name__": FaultMetric, "fault": name, "run": run, "job": "chaos"}, Value: v, At: now})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels["fault"] < out[j].Labels["fault"] })
	return out
}

// GateMetric is the series the harness pushes once the gates are evaluated:
// 1 when a gate passed, 0 when it failed, one series per gate of the run.
const GateMetric = "stampede_chaos_gate_pass"

// GateSeries turns a run's gate verdicts into remote-write series.
func GateSeries(run string, gates []verify.Gate, now time.Time) []Series {
	out := make([]Series, 0, len(gates))
	for _, g := range gates {
		v := 0.0
		if g.Pass {
			v = 1
		}
		out = append(out, Series{Labels: map[string]string{"__name__": GateMetric, "gate": g.Name, "run": run, "job": "chaos"}, Value: v, At: now})
	}
	return out
}
