package dashcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Checker evaluates queries against a Prometheus server.
type Checker struct {
	// URL is the Prometheus base URL (http://127.0.0.1:9090).
	URL    string
	Client *http.Client
	// Window is how far back a query may find data: a panel passes when its
	// query returns at least one series with at least one point in
	// [End-Window, End]. Short runs end, their series go stale; a window
	// proves the panel would have drawn the run.
	Window time.Duration
	// Step is the resolution of the range query (default Window/60, >= 1s).
	Step time.Duration
	// End is the end of the window (default: now).
	End time.Time
	// AllowEmpty matches "dashboard / panel" (or the expression) of queries that may
	// return no series (still must not error).
	AllowEmpty *regexp.Regexp
	// Timeout bounds each query (default 10s).
	Timeout time.Duration
}

// Result is the outcome of one query.
type Result struct {
	Query  Query
	Series int   // series with at least one point
	Err    error // nil when the query proved the panel
	// Allowed is set when the query returned nothing but AllowEmpty matched.
	Allowed bool
}

// Failed reports whether the query failed the check.
func (r Result) Failed() bool { return r.Err != nil && !r.Allowed }

// ErrNoSeries is the failure of a query that evaluates but returns nothing.
var ErrNoSeries = errors.New("dashcheck: query returned no series")

// Check evaluates every query of every dashboard and returns one Result per
// query, in dashboard order. The error is only for a check that could not
// run at all (bad dashboards, Prometheus unreachable).
func (c *Checker) Check(ctx context.Context, ds []Dashboard, o Options) ([]Result, error) {
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	var qs []Query
	for _, d := range ds {
		q, err := d.Queries(o)
		if err != nil {
			return nil, err
		}
		qs = append(qs, q...)
	}
	out := make([]Result, 0, len(qs))
	for _, q := range qs {
		n, err := c.Series(ctx, q.Expr)
		r := Result{Query: q, Series: n}
		switch {
		case err != nil:
			r.Err = err
		case n == 0:
			r.Err = ErrNoSeries
			if c.AllowEmpty != nil && (c.AllowEmpty.MatchString(q.Dashboard+" / "+q.Panel) || c.AllowEmpty.MatchString(q.Raw)) {
				r.Allowed = true
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *Checker) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return http.DefaultClient
}

func (c *Checker) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+"/api/v1/status/buildinfo", nil)
	if err != nil {
		return fmt.Errorf("prometheus url %q: %w", c.URL, err)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("reach prometheus at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reach prometheus at %s: buildinfo answered %s", c.URL, resp.Status)
	}
	return nil
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// apiResponse is the envelope of the Prometheus HTTP API.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
	Warnings []string `json:"warnings"`
}

// series is one element of a matrix or vector result.
type series struct {
	Metric     map[string]string `json:"metric"`
	Values     []json.RawMessage `json:"values"`
	Histograms []json.RawMessage `json:"histograms"`
	Value      json.RawMessage   `json:"value"`
	Histogram  json.RawMessage   `json:"histogram"`
}

// Series evaluates expr over the window (range query) and returns how many
// series have at least one point.
func (c *Checker) Series(ctx context.Context, expr string) (int, error) {
	end := c.End
	if end.IsZero() {
		end = time.Now()
	}
	window := c.Window
	if window <= 0 {
		window = 15 * time.Minute
	}
	step := c.Step
	if step <= 0 {
		step = window / 60
	}
	if step < time.Second {
		step = time.Second
	}
	v := url.Values{}
	v.Set("query", expr)
	v.Set("start", strconv.FormatFloat(float64(end.Add(-window).UnixMilli())/1000, 'f', 3, 64))
	v.Set("end", strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64))
	v.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	v.Set("timeout", c.timeout().String())

	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/api/v1/query_range", strings.NewReader(v.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("query prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("read prometheus answer: %w", err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("prometheus answered %s with no API response: %.200s", resp.Status, body)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "matrix", "vector":
		var ss []series
		if err := json.Unmarshal(r.Data.Result, &ss); err != nil {
			return 0, fmt.Errorf("decode %s result: %w", r.Data.ResultType, err)
		}
		n := 0
		for _, s := range ss {
			if len(s.Values)+len(s.Histograms) > 0 || len(s.Value) > 0 || len(s.Histogram) > 0 {
				n++
			}
		}
		return n, nil
	case "scalar", "string":
		return 1, nil
	}
	return 0, fmt.Errorf("prometheus: unexpected result type %q", r.Data.ResultType)
}

// Report writes one line per failed (or allowed-empty) query and a summary;
// it returns the number of failures.
func Report(w io.Writer, results []Result, verbose bool) int {
	failed := 0
	for _, r := range results {
		switch {
		case r.Failed():
			failed++
			fmt.Fprintf(w, "FAIL %s / %s [%s]: %v\n     expr: %s\n", r.Query.Dashboard, r.Query.Panel, r.Query.RefID, r.Err, r.Query.Expr)
		case r.Allowed:
			fmt.Fprintf(w, "EMPTY (allowed) %s / %s [%s]\n", r.Query.Dashboard, r.Query.Panel, r.Query.RefID)
		case verbose:
			fmt.Fprintf(w, "ok   %s / %s [%s]: %d series\n", r.Query.Dashboard, r.Query.Panel, r.Query.RefID, r.Series)
		}
	}
	fmt.Fprintf(w, "dashcheck: %d queries, %d failed\n", len(results), failed)
	return failed
}
