package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/order"
)

// fakeOrders is an Orders API in memory: each accepted order walks through
// the saga's statuses, one step per GET of the list (so settling takes a
// few polls), and ends in final (in_transit unless the order's number is in
// fail).
type fakeOrders struct {
	mu       sync.Mutex
	base     time.Time
	orders   map[string]*fakeOrder
	keys     map[string]string
	fail     map[int]bool
	stuck    map[int]bool // never leaves processing
	listErrs int          // the first listErrs lists answer 503
	lists    int
	n        int
}

type fakeOrder struct {
	n    int
	step int
}

var fakeSteps = []string{"pending", "processing", "reserving_inventory", "charging_payment", "creating_shipment", "shipped", "in_transit"}

func newFakeOrders() *fakeOrders {
	return &fakeOrders{base: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), orders: map[string]*fakeOrder{}, keys: map[string]string{}, fail: map[int]bool{}, stuck: map[int]bool{}}
}

func (f *fakeOrders) status(o *fakeOrder) string {
	if f.fail[o.n] && o.step >= 3 {
		if o.step == 3 {
			return "compensating"
		}
		return "failed"
	}
	return fakeSteps[min(o.step, len(fakeSteps)-1)]
}

// fakeServiceToken is the service token the bench presents on its reads.
const fakeServiceToken = "bench-test-service-token-0123456789abcdef"

func (f *fakeOrders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// As the Orders API's guard: placing is anonymous, reading is not.
	if r.Method == http.MethodGet && r.Header.Get("Authorization") != "Bearer "+fakeServiceToken {
		http.Error(w, `{"error":"missing or wrong token","field":"Authorization"}`, http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/orders":
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			http.Error(w, `{"error":"no key"}`, http.StatusBadRequest)
			return
		}
		if _, dup := f.keys[key]; dup {
			http.Error(w, `{"error":"key reused"}`, http.StatusUnprocessableEntity)
			return
		}
		var body struct {
			Payment struct{ Token string }
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Payment.Token != "tok_visa" {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		id := fmt.Sprintf("00000000-0000-0000-0000-%012d", f.n)
		f.orders[id] = &fakeOrder{n: f.n}
		f.keys[key] = id
		f.n++
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"orderId":%q,"status":"pending"}`, id)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/orders":
		f.lists++
		if f.lists <= f.listErrs {
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since")); err != nil {
			http.Error(w, `{"error":"since"}`, http.StatusBadRequest)
			return
		}
		type sum struct {
			OrderID string `json:"orderId"`
			Status  string `json:"status"`
		}
		// One page per call is enough to exercise the cursor: two orders a page.
		var all []sum
		for id, o := range f.orders {
			if !f.stuck[o.n] {
				o.step++
			}
			all = append(all, sum{id, f.status(o)})
		}
		slices.SortFunc(all, func(a, b sum) int { return strings.Compare(a.OrderID, b.OrderID) })
		page, next := all, ""
		if c := r.URL.Query().Get("cursor"); c != "" {
			page = nil
			for i, s := range all {
				if s.OrderID == c {
					page = all[i+1:]
				}
			}
		}
		if len(page) > 2 {
			page, next = page[:2], page[1].OrderID
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"orders": page, "next": next})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/orders/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/orders/")
		o, ok := f.orders[id]
		if !ok {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		// Step i of order n happens at base + n s + i*10 ms, so confirmation
		// (pending -> creating_shipment, 4 steps) is always 40 ms.
		var hist []map[string]any
		for i := 0; i <= min(o.step, len(fakeSteps)-1); i++ {
			if f.fail[o.n] && i >= 3 {
				break
			}
			hist = append(hist, map[string]any{"status": fakeSteps[i], "at": f.base.Add(time.Duration(o.n)*time.Second + time.Duration(i)*10*time.Millisecond)})
		}
		out := map[string]any{"orderId": id, "status": f.status(o), "createdAt": f.base, "history": hist}
		if f.status(o) == "failed" {
			out["failureReason"] = "card_declined"
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

func TestSaga(t *testing.T) {
	t.Setenv(config.SecretEnv(config.SecretServiceToken), fakeServiceToken)
	tests := []struct {
		name                                  string
		fail, stuck                           []int
		listErrs                              int
		wantCompleted, wantFailed, wantUnsett int
		wantAll                               bool
	}{
		{name: "ok/all complete", wantCompleted: 5, wantAll: true},
		{name: "ok/list errors are retried", listErrs: 2, wantCompleted: 5, wantAll: true},
		{name: "err/a failed order", fail: []int{2}, wantCompleted: 4, wantFailed: 1},
		{name: "err/an order never settles", stuck: []int{4}, wantCompleted: 4, wantUnsett: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOrders()
			for _, n := range tc.fail {
				f.fail[n] = true
			}
			for _, n := range tc.stuck {
				f.stuck[n] = true
			}
			f.listErrs = tc.listErrs
			srv := httptest.NewServer(f)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := Saga(ctx, SagaOptions{OrdersURL: srv.URL, Rate: 25, Duration: 200 * time.Millisecond, Settle: 300 * time.Millisecond, Poll: 10 * time.Millisecond, RunID: "t"})
			if err != nil {
				t.Fatalf("Saga: %v", err)
			}
			if res.Sent != 5 || res.Placed != 5 || res.Rejected != 0 {
				t.Fatalf("sent/placed/rejected = %d/%d/%d, want 5/5/0", res.Sent, res.Placed, res.Rejected)
			}
			if res.Completed != tc.wantCompleted || res.Failed != tc.wantFailed || res.NotSettled != tc.wantUnsett {
				t.Errorf("completed/failed/not settled = %d/%d/%d, want %d/%d/%d", res.Completed, res.Failed, res.NotSettled, tc.wantCompleted, tc.wantFailed, tc.wantUnsett)
			}
			if got := res.AllCompleted(); got != tc.wantAll {
				t.Errorf("AllCompleted = %v, want %v", got, tc.wantAll)
			}
			if res.Confirm.N != tc.wantCompleted || res.Confirm.P50 != 40*time.Millisecond || res.Confirm.Max != 40*time.Millisecond {
				t.Errorf("confirm = %s, want n=%d all 40ms", res.Confirm, tc.wantCompleted)
			}
			if res.EndToEnd.P99 != 60*time.Millisecond {
				t.Errorf("e2e p99 = %s, want 60ms", res.EndToEnd.P99)
			}
			if len(tc.fail) > 0 && res.FailReasons["card_declined"] != len(tc.fail) {
				t.Errorf("fail reasons = %v, want card_declined: %d", res.FailReasons, len(tc.fail))
			}
			if tc.wantUnsett > 0 && res.SettledAfter != 300*time.Millisecond {
				t.Errorf("settled after = %s, want the settle time 300ms", res.SettledAfter)
			}
		})
	}
}

func TestSagaRejectedOrderIsNotComplete(t *testing.T) {
	t.Setenv(config.SecretEnv(config.SecretServiceToken), fakeServiceToken)
	f := newFakeOrders()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		refuse := r.Method == http.MethodPost && f.n == 1
		if refuse {
			f.n++ // the second POST is refused
		}
		f.mu.Unlock()
		if refuse {
			http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Saga(ctx, SagaOptions{OrdersURL: srv.URL, Rate: 20, Duration: 200 * time.Millisecond, Settle: time.Second, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 1 || res.Placed != 3 || res.Completed != 3 {
		t.Errorf("rejected/placed/completed = %d/%d/%d, want 1/3/3", res.Rejected, res.Placed, res.Completed)
	}
	if res.AllCompleted() {
		t.Error("AllCompleted with a rejected order, want false")
	}
}

func TestClassify(t *testing.T) {
	at := func(s string, ms int) order.HistoryEntry {
		return order.HistoryEntry{Status: s, At: time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond)}
	}
	orders := map[string]*OrderHistory{
		"a": {Status: "in_transit", History: append([]order.HistoryEntry(nil), at("pending", 0), at("processing", 70), at("creating_shipment", 100), at("in_transit", 150))},
		"b": {Status: "in_transit", History: append([]order.HistoryEntry(nil), at("pending", 1000), at("creating_shipment", 1300), at("in_transit", 1400))},
		// No creating_shipment entry: counted complete, left out of the latencies.
		"c": {Status: "delivered", History: append([]order.HistoryEntry(nil), at("pending", 0), at("in_transit", 10))},
		"d": {Status: "cancelled"},
		"e": {Status: "charging_payment"},
		"f": nil, // its GET failed
	}
	var r SagaResult
	Classify(&r, orders)
	if r.Completed != 3 || r.Failed != 1 || r.NotSettled != 2 || r.NoHistory != 1 {
		t.Errorf("completed/failed/not settled/no history = %d/%d/%d/%d, want 3/1/2/1", r.Completed, r.Failed, r.NotSettled, r.NoHistory)
	}
	if r.Confirm.N != 2 || r.Confirm.P50 != 100*time.Millisecond || r.Confirm.P99 != 300*time.Millisecond {
		t.Errorf("confirm = %s, want n=2 p50=100ms p99=300ms", r.Confirm)
	}
	if r.Start.N != 1 || r.Start.P50 != 70*time.Millisecond || r.Steps.P50 != 30*time.Millisecond {
		t.Errorf("start = %s, steps = %s, want n=1 70ms and 30ms", r.Start, r.Steps)
	}
	if r.EndToEnd.P99 != 400*time.Millisecond {
		t.Errorf("e2e p99 = %s, want 400ms", r.EndToEnd.P99)
	}
	if r.FailReasons["cancelled"] != 1 {
		t.Errorf("fail reasons = %v, want cancelled: 1", r.FailReasons)
	}
}

func TestHistogram(t *testing.T) {
	text := func(a, b, inf int) []byte {
		return fmt.Appendf(nil, `# TYPE x histogram
x_bucket{q="a",le="0.01"} %d
x_bucket{q="a",le="0.1"} %d
x_bucket{q="a",le="+Inf"} %d
x_bucket{q="b",le="0.01"} 1
x_bucket{q="b",le="0.1"} 1
x_bucket{q="b",le="+Inf"} 1
x_count{q="a"} %d
xy_bucket{le="0.01"} 99
`, a, b, inf, inf)
	}
	before := ParseHistogram(text(10, 10, 10), "x")
	after := ParseHistogram(text(100, 198, 210), "x")
	d := after.Sub(before)
	if d.Count() != 200 {
		t.Fatalf("count = %v, want 200", d.Count())
	}
	tests := []struct {
		q    float64
		want float64
	}{{.45, 0.01}, {.5, 0.1}, {.94, 0.1}, {.99, -1}}
	for _, tc := range tests {
		if got := d.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (Histogram{}).Quantile(.99); got != 0 {
		t.Errorf("empty Quantile = %v, want 0", got)
	}
}

// TestPlace checks the one order poster both benchmarks use: the saga's
// orders carry their Idempotency-Key, the accept benchmark's none, and both
// stay within their line count and street.
func TestPlace(t *testing.T) {
	type seen struct {
		key   string
		lines int
		line1 string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Items           []json.RawMessage `json:"items"`
			ShippingAddress struct {
				Line1 string `json:"line1"`
			} `json:"shippingAddress"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decode the posted order: %v", err)
		}
		got <- seen{r.Header.Get("Idempotency-Key"), len(body.Items), body.ShippingAddress.Line1}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"orderId":"o-1","status":"pending"}`)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		api      ordersAPI
		key      string
		wantLine string
	}{
		{"ok/saga with key", ordersAPI{base: srv.URL, c: srv.Client(), maxLines: 3, street: "Saga St"}, "run-7", "7 Saga St"},
		{"ok/accept without key", ordersAPI{base: srv.URL, c: srv.Client(), maxLines: 5, street: "Load St"}, "", "7 Load St"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.api.place(context.Background(), tc.key, 7)
			if err != nil || id != "o-1" {
				t.Fatalf("place = %q, %v; want o-1, nil", id, err)
			}
			s := <-got
			if s.key != tc.key || s.line1 != tc.wantLine || s.lines < 1 || s.lines > tc.api.maxLines {
				t.Errorf("posted key=%q line1=%q lines=%d; want key=%q line1=%q 1..%d lines", s.key, s.line1, s.lines, tc.key, tc.wantLine, tc.api.maxLines)
			}
		})
	}
}
