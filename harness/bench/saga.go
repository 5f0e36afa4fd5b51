// Package bench measures the platform on the real stack and writes the
// figures the README and the issue notes quote, so every number has a
// command that reproduces it.
//
// It must never report a figure it did not measure in the run it describes.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/web"
)

// SagaOptions configure the full-saga benchmark.
type SagaOptions struct {
	OrdersURL string
	Rate      int           // orders per second, open loop
	Duration  time.Duration // how long to place orders
	Settle    time.Duration // how long after the last order to wait for every order to settle
	// Poll is how often the settle phase lists the orders; 0 means 1 s.
	Poll time.Duration
	// Concurrency of the final GET /v1/orders/{id} pass; 0 means 8.
	Concurrency int
	Client      *http.Client // nil: a client with a 30 s timeout and the service token
	Progress    io.Writer    // one line per second; nil for none
	// RunID prefixes the Idempotency-Key of every order, so two runs never
	// share a key; empty means one derived from the start time.
	RunID string
}

// SagaResult is what one run of the full-saga benchmark measured.
type SagaResult struct {
	Rate     int           `json:"rate"`
	Duration time.Duration `json:"duration"`
	// Sent POSTs; Placed of them answered 202; Rejected did not.
	Sent     int `json:"sent"`
	Placed   int `json:"placed"`
	Rejected int `json:"rejected"`
	// LateSends were sent more than LateAfter behind their schedule (the
	// sender never waits for the server, so lateness is the client's own).
	LateSends  int           `json:"lateSends"`
	MaxSendLag time.Duration `json:"maxSendLag"`
	// AchievedRate is Placed divided by the sending time.
	AchievedRate float64 `json:"achievedRate"`
	Completed    int     `json:"completed"`  // in_transit (or delivered)
	Failed       int     `json:"failed"`     // failed or cancelled
	NotSettled   int     `json:"notSettled"` // neither when the settle time ran out
	// SettledAfter is how long after the last send every order had settled
	// (the settle time when some never did).
	SettledAfter time.Duration  `json:"settledAfter"`
	FailReasons  map[string]int `json:"failReasons,omitempty"`
	// Confirm is pending -> creating_shipment (reserved and charged), from
	// the server's history timestamps; EndToEnd is pending -> in_transit.
	Confirm  stats.Dist `json:"confirm"`
	EndToEnd stats.Dist `json:"endToEnd"`
	// Confirm split in two: Start is pending -> processing (outbox relay,
	// Kafka, orchestrator, workflow start and its first task); Steps is
	// processing -> creating_shipment (reserve and charge activities).
	Start stats.Dist `json:"start"`
	Steps stats.Dist `json:"steps"`
	// NoHistory counts completed orders whose history lacked a timestamp
	// the latencies need (left out of Confirm/EndToEnd).
	NoHistory int `json:"noHistory"`
	// IDs are the placed orders, for callers that look at them further
	// (e.g. their Temporal histories).
	IDs []string `json:"-"`
}

// AllCompleted reports whether every placed order reached in_transit and
// nothing was rejected or failed.
func (r SagaResult) AllCompleted() bool {
	return r.Sent > 0 && r.Rejected == 0 && r.Failed == 0 && r.NotSettled == 0 && r.Completed == r.Placed
}

// LateAfter is how far behind schedule a send counts as late.
const LateAfter = 20 * time.Millisecond

// Saga places orders that should all complete at a constant open-loop rate,
// waits (at most Settle) until every one is in_transit or failed, then reads
// each order's status history for the latencies.
func Saga(ctx context.Context, o SagaOptions) (SagaResult, error) {
	res := SagaResult{Rate: o.Rate, Duration: o.Duration}
	if o.Rate <= 0 || o.Duration <= 0 || o.Settle < 0 {
		return res, fmt.Errorf("bench: rate and duration must be positive, settle not negative")
	}
	c := o.Client
	if c == nil {
		// Orders are placed anonymously; following them (GET /v1/orders...)
		// takes the service token.
		var err error
		c, err = web.ServiceClient(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}})
		if err != nil {
			return res, err
		}
	}
	api := &ordersAPI{base: o.OrdersURL, c: c, maxLines: 3, street: "Saga St"}
	runID := o.RunID
	if runID == "" {
		runID = fmt.Sprintf("bench-saga-%d", time.Now().UnixNano())
	}

	var (
		mu   sync.Mutex
		ids  []string
		wg   sync.WaitGroup
		rejs int
	)
	interval := time.Second / time.Duration(o.Rate)
	start := time.Now()
	since := start.Add(-time.Second) // the server's clock may be a little behind ours
	lastReport := start
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= o.Duration || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Until(due))
		if lag := time.Since(due); lag > LateAfter {
			res.LateSends++
			res.MaxSendLag = max(res.MaxSendLag, lag)
		}
		res.Sent++
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			id, err := api.place(ctx, fmt.Sprintf("%s-%d", runID, n), n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rejs++
				if rejs <= 3 && o.Progress != nil {
					fmt.Fprintf(o.Progress, "\norder %d rejected: %v\n", n, err)
				}
				return
			}
			ids = append(ids, id)
		}(i)
		if o.Progress != nil && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			mu.Lock()
			fmt.Fprintf(o.Progress, "\r%5.0fs  sent %d  placed %d  rejected %d  late %d   ", time.Since(start).Seconds(), res.Sent, len(ids), rejs, res.LateSends)
			mu.Unlock()
		}
	}
	wg.Wait()
	sendEnd := time.Now()
	res.Placed, res.Rejected = len(ids), rejs
	if d := sendEnd.Sub(start); d > 0 {
		res.AchievedRate = float64(res.Placed) / d.Seconds()
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "\rsent %d  placed %d  rejected %d  late %d (max %s) in %s; waiting up to %s for the sagas\n",
			res.Sent, res.Placed, res.Rejected, res.LateSends, stats.Ms(res.MaxSendLag), sendEnd.Sub(start).Round(time.Millisecond), o.Settle)
	}

	poll := o.Poll
	if poll <= 0 {
		poll = time.Second
	}
	settled, err := WaitSettled(ctx, api, ids, since, sendEnd.Add(o.Settle), poll, o.Progress)
	if err != nil && ctx.Err() != nil {
		return res, err
	}
	res.SettledAfter = time.Since(sendEnd)
	if !settled {
		res.SettledAfter = o.Settle
	}

	orders := api.getAll(ctx, ids, o.Concurrency)
	Classify(&res, orders)
	res.IDs = ids
	return res, ctx.Err()
}

// Terminal reports whether the benchmark stops waiting for an order in
// status s: it completed (in_transit, delivered) or was undone.
func Terminal(s string) bool {
	switch s {
	case order.StatusInTransit, order.StatusDelivered, order.StatusFailed, order.StatusCancelled:
		return true
	}
	return false
}

// OrderHistory is the part of GET /v1/orders/{id} the benchmark reads.
type OrderHistory struct {
	OrderID       string               `json:"orderId"`
	Status        string               `json:"status"`
	FailureReason string               `json:"failureReason"`
	CreatedAt     time.Time            `json:"createdAt"`
	History       []order.HistoryEntry `json:"history"`
}

// At returns the time of the first history entry with status s.
func (o OrderHistory) At(s string) (time.Time, bool) {
	for _, h := range o.History {
		if h.Status == s {
			return h.At, true
		}
	}
	if s == order.StatusPending && !o.CreatedAt.IsZero() {
		return o.CreatedAt, true
	}
	return time.Time{}, false
}

// Classify counts the orders' final states into res and computes the
// latencies of the completed ones. An id with no order (a failed GET)
// counts as not settled.
func Classify(res *SagaResult, orders map[string]*OrderHistory) {
	var confirm, e2e, start, steps []time.Duration
	res.Completed, res.Failed, res.NotSettled, res.NoHistory = 0, 0, 0, 0
	for _, o := range orders {
		switch {
		case o == nil || !Terminal(o.Status):
			res.NotSettled++
			continue
		case o.Status == order.StatusFailed || o.Status == order.StatusCancelled:
			res.Failed++
			if res.FailReasons == nil {
				res.FailReasons = map[string]int{}
			}
			r := o.FailureReason
			if r == "" {
				r = o.Status
			}
			res.FailReasons[r]++
			continue
		}
		res.Completed++
		p, ok1 := o.At(order.StatusPending)
		c, ok2 := o.At(order.StatusCreatingShipment)
		t, ok3 := o.At(order.StatusInTransit)
		if !ok1 || !ok2 {
			res.NoHistory++
			continue
		}
		confirm = append(confirm, c.Sub(p))
		if pr, ok := o.At(order.StatusProcessing); ok {
			start = append(start, pr.Sub(p))
			steps = append(steps, c.Sub(pr))
		}
		if ok3 {
			e2e = append(e2e, t.Sub(p))
		}
	}
	res.Confirm = stats.Summarise(confirm)
	res.EndToEnd = stats.Summarise(e2e)
	res.Start = stats.Summarise(start)
	res.Steps = stats.Summarise(steps)
}

// StatusLister lists the status of orders created since a time; the
// Orders API's GET /v1/orders implements it.
type StatusLister interface {
	Statuses(ctx context.Context, since time.Time) (map[string]string, error)
}

// WaitSettled polls l every poll until every id has a terminal status or
// the deadline passes, and reports whether all settled. A failing list is
// retried at the next poll; only ctx ends the wait early.
func WaitSettled(ctx context.Context, l StatusLister, ids []string, since, deadline time.Time, poll time.Duration, progress io.Writer) (bool, error) {
	pending := make(map[string]bool, len(ids))
	for _, id := range ids {
		pending[id] = true
	}
	for {
		st, err := l.Statuses(ctx, since)
		if err == nil {
			for id, s := range st {
				if pending[id] && Terminal(s) {
					delete(pending, id)
				}
			}
		} else if progress != nil {
			fmt.Fprintf(progress, "\nlist orders: %v\n", err)
		}
		if progress != nil {
			fmt.Fprintf(progress, "\r  %d of %d orders not settled yet   ", len(pending), len(ids))
		}
		if len(pending) == 0 {
			if progress != nil {
				fmt.Fprintln(progress)
			}
			return true, nil
		}
		if !time.Now().Add(poll).Before(deadline) {
			if progress != nil {
				fmt.Fprintln(progress)
			}
			return false, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
}

// ordersAPI is the benchmark's client of the Orders API.
type ordersAPI struct {
	base string
	c    *http.Client
	// maxLines and street shape the orders place posts: 1 to maxLines
	// lines, shipped to "<n> <street>".
	maxLines int
	street   string
}

// place posts one order that every service accepts: a SKU that is always
// in stock, a card that is never declined, a deliverable address. key, when
// not empty, is its Idempotency-Key.
func (a *ordersAPI) place(ctx context.Context, key string, n int) (string, error) {
	lines := 1 + rand.IntN(a.maxLines)
	items := make([]map[string]any, lines)
	for i := range items {
		items[i] = map[string]any{"sku": fmt.Sprintf("SKU-%05d", 1+rand.IntN(1000)), "qty": 1 + rand.IntN(3), "priceCents": 100 + rand.IntN(20000)}
	}
	body, _ := json.Marshal(map[string]any{
		"userId": fmt.Sprintf("u-%d", 1+rand.IntN(10000)), "currency": "USD", "items": items,
		"shippingAddress": map[string]any{"name": "Bench", "line1": fmt.Sprintf("%d %s", n, a.street), "city": "Springfield", "postalCode": "12345", "country": "US"},
		"payment":         map[string]any{"method": "card", "token": "tok_visa"},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+order.PathOrders, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(web.HeaderIdempotencyKey, key)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/orders: %d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var r order.CreateResponse
	if err := json.Unmarshal(b, &r); err != nil || r.OrderID == "" {
		return "", fmt.Errorf("POST /v1/orders: no orderId in %s", b)
	}
	return r.OrderID, nil
}

// Statuses pages through GET /v1/orders?since= (1000 a page).
func (a *ordersAPI) Statuses(ctx context.Context, since time.Time) (map[string]string, error) {
	out := map[string]string{}
	cursor := ""
	for page := 0; page < 1000; page++ {
		q := url.Values{"since": {since.UTC().Format(time.RFC3339Nano)}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var l order.List
		if err := a.getJSON(ctx, order.PathOrders+"?"+q.Encode(), &l); err != nil {
			return out, err
		}
		for _, o := range l.Orders {
			out[o.OrderID] = o.Status
		}
		if l.Next == "" {
			return out, nil
		}
		cursor = l.Next
	}
	return out, fmt.Errorf("list orders: more than 1000 pages")
}

// getAll reads every order's history, n at a time; a failed read leaves a
// nil entry.
func (a *ordersAPI) getAll(ctx context.Context, ids []string, n int) map[string]*OrderHistory {
	if n <= 0 {
		n = 8
	}
	out := make(map[string]*OrderHistory, len(ids))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				var o OrderHistory
				var got *OrderHistory
				for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
					if err := a.getJSON(ctx, web.Path(order.PathOrder, id), &o); err == nil {
						got = &o
						break
					}
				}
				mu.Lock()
				out[id] = got
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return out
}

// OrdersClient is the harness's one client of the Orders API (the
// benchmark's): the chaos audit reads each order's view through it.
type OrdersClient struct{ api *ordersAPI }

// NewOrdersClient returns a client of the Orders API at base.
func NewOrdersClient(base string, c *http.Client) *OrdersClient {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return &OrdersClient{api: &ordersAPI{base: base, c: c}}
}

// Orders reads GET /v1/orders/{id} of every id, n at a time (retried
// twice); an order that could not be read is nil.
func (o *OrdersClient) Orders(ctx context.Context, ids []string, n int) map[string]*OrderHistory {
	return o.api.getAll(ctx, ids, n)
}

func (a *ordersAPI) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

// Histogram is a Prometheus histogram summed over its label sets:
// cumulative counts by upper bound.
type Histogram map[float64]float64

// ScrapeHistogram reads the histogram name (without _bucket) from a
// Prometheus text endpoint, summing every label set.
func ScrapeHistogram(ctx context.Context, c *http.Client, metricsURL, name string) (Histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return ParseHistogram(b, name), nil
}

// ParseHistogram picks the buckets of histogram name out of Prometheus text.
func ParseHistogram(text []byte, name string) Histogram {
	h := Histogram{}
	prefix := []byte(name + "_bucket{")
	for _, line := range bytes.Split(text, []byte("\n")) {
		if !bytes.HasPrefix(line, prefix) {
			continue
		}
		i := bytes.Index(line, []byte(`le="`))
		if i < 0 {
			continue
		}
		rest := line[i+4:]
		j := bytes.IndexByte(rest, '"')
		k := bytes.LastIndexByte(line, ' ')
		if j < 0 || k < 0 {
			continue
		}
		var le, v float64
		if string(rest[:j]) == "+Inf" {
			le = inf
		} else if _, err := fmt.Sscan(string(rest[:j]), &le); err != nil {
			continue
		}
		if _, err := fmt.Sscan(string(line[k+1:]), &v); err != nil {
			continue
		}
		h[le] += v
	}
	return h
}

const inf = 1e308

// Sub returns h minus an earlier scrape of the same histogram.
func (h Histogram) Sub(before Histogram) Histogram {
	d := Histogram{}
	for le, v := range h {
		d[le] = v - before[le]
	}
	return d
}

// Count is the number of observations (the +Inf bucket).
func (h Histogram) Count() float64 { return h[inf] }

// Quantile returns the upper bound of the bucket holding the q-quantile
// (an upper estimate; +Inf comes back as -1).
func (h Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n <= 0 {
		return 0
	}
	les := make([]float64, 0, len(h))
	for le := range h {
		les = append(les, le)
	}
	slices.Sort(les)
	for _, le := range les {
		if h[le] >= q*n {
			if le == inf {
				return -1
			}
			return le
		}
	}
	return -1
}

// ProcCPU returns the user+system CPU time a process has used so far, from
// /proc/PID/stat (Linux; clock ticks assumed 100 Hz).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields start after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
