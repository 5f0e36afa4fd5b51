package orders

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/xk6-orders/orderstest"
)

// clientVU is a VU in an iteration with `client` bound to baseURL and a
// ledger in a temporary directory.
func clientVU(t *testing.T, baseURL, extra string) (*testVU, string) {
	t.Helper()
	v := newTestVU(t)
	ledger := filepath.Join(t.TempDir(), "run", "ledger.jsonl")
	v.mustRun(fmt.Sprintf(`var client = new orders.Client({baseUrl: %q, ledger: %q%s})`, baseURL, ledger, extra))
	v.enter()
	return v, ledger
}

// placeJS places the order expression and returns place()'s result.
func placeJS(t *testing.T, v *testVU, order string) map[string]any {
	t.Helper()
	out := v.mustRun(`JSON.stringify(client.place(` + order + `))`).String()
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("place() result %q: %v", out, err)
	}
	return res
}

func TestPlaceLedger(t *testing.T) {
	tests := []struct {
		name        string
		handler     func(stub http.Handler) http.Handler
		order       string
		extra       string
		wantOutcome string
		wantCode    int
		wantTries   int
		wantMetric  string
		wantErr     string
	}{
		{
			name:        "ok/acked",
			handler:     func(stub http.Handler) http.Handler { return stub },
			order:       `orders.generate({seed: 1})`,
			wantOutcome: OutcomeAcked, wantCode: 202, wantTries: 1, wantMetric: MetricPlaced,
		},
		{
			name:        "ok/rejected on 4xx",
			handler:     func(stub http.Handler) http.Handler { return stub },
			order:       `Object.assign(orders.generate({seed: 1}), {items: [{sku: "SKU-00001", qty: 0, priceCents: 1}]})`,
			wantOutcome: OutcomeRejected, wantCode: 400, wantTries: 1, wantMetric: MetricRejected,
			wantErr: "items[0].qty",
		},
		{
			name: "ok/unknown on 5xx, not retried",
			handler: func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, `{"error":"database unavailable"}`, http.StatusServiceUnavailable)
				})
			},
			order:       `orders.generate({seed: 1})`,
			wantOutcome: OutcomeUnknown, wantCode: 503, wantTries: 1, wantMetric: MetricUnknown,
			wantErr: "database unavailable",
		},
		{
			name: "ok/unknown on 409 in flight",
			handler: func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, `{"error":"still in flight","field":"Idempotency-Key"}`, http.StatusConflict)
				})
			},
			order:       `orders.generate({seed: 1})`,
			wantOutcome: OutcomeUnknown, wantCode: 409, wantTries: 1, wantMetric: MetricUnknown,
		},
		{
			name: "ok/unknown on timeout, retried once",
			handler: func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client hang up
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				})
			},
			order:       `orders.generate({seed: 1})`,
			extra:       `, timeout: 200`,
			wantOutcome: OutcomeUnknown, wantCode: 0, wantTries: 2, wantMetric: MetricUnknown,
			wantErr: "timeout",
		},
		{
			name: "ok/unknown on 2xx without an order id",
			handler: func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusAccepted)
				})
			},
			order:       `orders.generate({seed: 1})`,
			wantOutcome: OutcomeUnknown, wantCode: 202, wantTries: 1, wantMetric: MetricUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := orderstest.New(time.Millisecond)
			srv := httptest.NewServer(tt.handler(stub.Handler()))
			defer srv.Close()
			v, ledger := clientVU(t, srv.URL, tt.extra)
			v.iter = 3

			res := placeJS(t, v, tt.order)
			if got := res["outcome"]; got != tt.wantOutcome {
				t.Errorf("got outcome %v, want %v (result %v)", got, tt.wantOutcome, res)
			}
			lines := readLedger(t, ledger)
			if len(lines) != 1 {
				t.Fatalf("got %d ledger lines, want 1", len(lines))
			}
			l := lines[0]
			if l.Outcome != tt.wantOutcome || l.Code != tt.wantCode || l.Attempts != tt.wantTries {
				t.Errorf("got ledger outcome=%s code=%d attempts=%d, want %s %d %d", l.Outcome, l.Code, l.Attempts, tt.wantOutcome, tt.wantCode, tt.wantTries)
			}
			if l.IdempotencyKey != "test:s1:i3" || l.UserID == "" || l.Expect != ExpectComplete || l.Scenario != "test" {
				t.Errorf("ledger line lacks the order's identity: %+v", l)
			}
			if _, err := time.Parse(time.RFC3339Nano, l.SentAt); err != nil {
				t.Errorf("sentAt %q: %v", l.SentAt, err)
			}
			if tt.wantOutcome == OutcomeAcked {
				if l.OrderID == "" || !stub.Has(l.OrderID) || l.OrderID != res["orderId"] {
					t.Errorf("acked line orderId %q: not the order the API made", l.OrderID)
				}
				if _, err := time.Parse(time.RFC3339Nano, l.AcceptedAt); err != nil {
					t.Errorf("acceptedAt %q: %v", l.AcceptedAt, err)
				}
			} else if l.OrderID != "" || l.AcceptedAt != "" {
				t.Errorf("%s line has orderId %q acceptedAt %q, want both empty", l.Outcome, l.OrderID, l.AcceptedAt)
			}
			if tt.wantErr != "" && !strings.Contains(l.Error, tt.wantErr) {
				t.Errorf("got ledger error %q, want it to mention %q", l.Error, tt.wantErr)
			}

			samples := v.drain()
			for _, m := range []string{MetricPlaced, MetricRejected, MetricUnknown} {
				n, _ := count(samples, m, map[string]string{"expect": ExpectComplete, "scenario": "test"})
				want := 0
				if m == tt.wantMetric {
					want = 1
				}
				if n != want {
					t.Errorf("%s: got %d samples tagged expect=complete, want %d", m, n, want)
				}
			}
			if n, _ := count(samples, MetricAcceptDuration, map[string]string{"expect": ExpectComplete}); (n == 1) != (tt.wantOutcome == OutcomeAcked) {
				t.Errorf("%s: got %d samples for outcome %s", MetricAcceptDuration, n, tt.wantOutcome)
			}
			if n, _ := count(samples, "http_reqs", map[string]string{"expect": ExpectComplete}); n != tt.wantTries {
				t.Errorf("http_reqs: got %d tagged requests, want %d", n, tt.wantTries)
			}
		})
	}
}

func TestPlaceRetriesNetworkErrorWithSameKey(t *testing.T) {
	stub := orderstest.New(time.Millisecond)
	var (
		calls atomic.Int32
		mu    sync.Mutex
		keys  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if calls.Add(1) == 1 {
			// The first attempt reaches the API, which commits the order,
			// and then the connection drops before the answer arrives.
			stub.Handler().ServeHTTP(httptest.NewRecorder(), r)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		stub.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	v, ledger := clientVU(t, srv.URL, "")

	res := placeJS(t, v, `orders.generate({seed: 4})`)
	if res["outcome"] != OutcomeAcked || res["attempts"] != float64(2) {
		t.Fatalf("got %v, want acked after 2 attempts", res)
	}
	if keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("retry keys %q, want the same non-empty key twice", keys)
	}
	if got := stub.Len(); got != 1 {
		t.Errorf("the API holds %d orders, want 1: the retry must replay, not duplicate", got)
	}
	l := readLedger(t, ledger)[0]
	if !stub.Has(l.OrderID) || l.Attempts != 2 {
		t.Errorf("ledger line %+v does not name the one order after 2 attempts", l)
	}
}

func TestLedgerSafeAcrossVUs(t *testing.T) {
	var ls ledgers
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	const vus, each = 32, 100
	var wg sync.WaitGroup
	for vu := range vus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := ls.open(path) // every VU opens it, as every VU's Client does
			if err != nil {
				t.Error(err)
				return
			}
			for i := range each {
				line := LedgerLine{
					IdempotencyKey: fmt.Sprintf("vu%d-%d", vu, i),
					Outcome:        OutcomeAcked,
					Error:          strings.Repeat("x", 2000), // long lines interleave first if anything does
				}
				if err := l.write(line); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	lines := readLedger(t, path)
	if len(lines) != vus*each {
		t.Fatalf("got %d lines, want %d", len(lines), vus*each)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l.IdempotencyKey] {
			t.Fatalf("line %s written twice", l.IdempotencyKey)
		}
		seen[l.IdempotencyKey] = true
	}

	// A second ledgers (a second k6 run) appends rather than truncates.
	var again ledgers
	l, err := again.open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.write(LedgerLine{IdempotencyKey: "next-run"}); err != nil {
		t.Fatal(err)
	}
	if got := len(readLedger(t, path)); got != vus*each+1 {
		t.Errorf("after reopening: got %d lines, want %d", got, vus*each+1)
	}
}

func TestWaitForResolves(t *testing.T) {
	stub := orderstest.New(20 * time.Millisecond)
	srv := httptest.NewServer(stub.Handler())
	defer srv.Close()
	v, _ := clientVU(t, srv.URL, `, pollInterval: 10`)

	// The timer fires while waitFor is pending: the poll must not hold the
	// event loop. `order` records which settled first.
	v.mustRun(`
		var order = [];
		var result;
		var res = client.place(orders.generate({seed: 2, mix: "declined=0"}));
		client.waitFor(res, ["creating_shipment"], 5000).then((h) => { order.push("waitFor"); result = h; });
		setTimeout(() => order.push("timer"), 1);
	`)
	got := v.mustRun(`JSON.stringify({order: order, result: result})`).String()
	var out struct {
		Order  []string
		Result struct {
			OrderID   string
			Status    string
			Reached   bool
			ConfirmMs *float64
			History   []HistoryEntry
		}
	}
	if err := json.Unmarshal([]byte(got), &out); err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.Order, ",") != "timer,waitFor" {
		t.Errorf("settled in order %v, want the timer before waitFor", out.Order)
	}
	r := out.Result
	if !r.Reached || len(r.History) < 5 || r.History[0].Status != "pending" {
		t.Fatalf("got %+v, want reached with a history from pending to creating_shipment", r)
	}
	if r.ConfirmMs == nil || *r.ConfirmMs != 80 {
		// The stub steps every 20 ms: pending -> creating_shipment is 4 steps.
		t.Errorf("got confirmMs %v, want 80 (from the server timestamps)", r.ConfirmMs)
	}
	samples := v.drain()
	n, sum := count(samples, MetricConfirmDuration, map[string]string{"expect": ExpectComplete, "scenario": "test"})
	if n != 1 || sum != 80 {
		t.Errorf("%s: got %d samples summing %v, want one of 80", MetricConfirmDuration, n, sum)
	}
	// Polls are measured but, being retried, are not judged by http_req_failed.
	if polls, _ := count(samples, "http_reqs", map[string]string{"method": "GET", "expect": ExpectComplete}); polls < 2 {
		t.Errorf("got %d GET samples, want the polls measured", polls)
	}
	if failed, _ := count(samples, "http_req_failed", map[string]string{"method": "GET"}); failed != 0 {
		t.Errorf("got %d http_req_failed samples for polls, want none", failed)
	}
	if failed, _ := count(samples, "http_req_failed", map[string]string{"method": "POST"}); failed != 1 {
		t.Errorf("got %d http_req_failed samples for the placement, want 1", failed)
	}
}

func TestWaitForSettlesOnTerminal(t *testing.T) {
	stub := orderstest.New(5 * time.Millisecond)
	srv := httptest.NewServer(stub.Handler())
	defer srv.Close()
	v, _ := clientVU(t, srv.URL, `, pollInterval: 10`)
	// A declined order never reaches creating_shipment; waiting for it
	// settles when the order fails instead of running into the timeout.
	v.mustRun(`
		var out;
		var res = client.place(orders.generate({seed: 2, mix: "declined=1"}));
		client.waitFor(res, ["creating_shipment"], 5000).then((h) => { out = h; });
	`)
	s := v.mustRun(`JSON.stringify(out)`).String()
	var r struct {
		Status    string
		Reached   bool
		ConfirmMs *float64
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "failed" || r.Reached || r.ConfirmMs != nil {
		t.Errorf("got %s, want failed, not reached, no confirmMs", s)
	}
}

func TestWaitForRejects(t *testing.T) {
	tests := []struct {
		name    string
		waitFor string
		wantErr string
	}{
		{"err/timeout", `client.waitFor(res, ["delivered"], 150)`, "timed out after 150ms waiting for delivered; last status \"pending\""},
		{"err/unknown order", `client.waitFor("no-such-order", ["delivered"], 5000)`, "no such order (404)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := orderstest.New(time.Hour) // orders stay pending
			srv := httptest.NewServer(stub.Handler())
			defer srv.Close()
			v, _ := clientVU(t, srv.URL, `, pollInterval: 20`)
			start := time.Now()
			v.mustRun(`
				var outcome = "pending";
				var res = client.place(orders.generate({seed: 2}));
				` + tt.waitFor + `.then(() => { outcome = "resolved"; }, (e) => { outcome = "rejected: " + e; });
			`)
			got := v.mustRun(`outcome`).String()
			if !strings.HasPrefix(got, "rejected: ") || !strings.Contains(got, tt.wantErr) {
				t.Errorf("got %q, want a rejection mentioning %q", got, tt.wantErr)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v to settle", took)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	stub := orderstest.New(time.Hour)
	srv := httptest.NewServer(stub.Handler())
	defer srv.Close()
	v, _ := clientVU(t, srv.URL, "")
	got := v.mustRun(`
		var res = client.place(orders.generate({seed: 2}));
		var s = client.status(res.orderId);
		var missing = client.status("nope");
		JSON.stringify([s.code, s.orderId === res.orderId, s.status, missing.code, missing.error]);
	`).String()
	if want := `[200,true,"pending",404,"id: no order \"nope\""]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Reads carry the client's token (given, or read from tokenFile), placing
// never does; without one the API's 401 names Authorization.
func TestReadsCarryTheToken(t *testing.T) {
	stub := orderstest.New(time.Hour)
	stub.ReadToken = "read-token-1"
	srv := httptest.NewServer(stub.Handler())
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("read-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := `var res = client.place(orders.generate({seed: 3})); var s = client.status(res.orderId); JSON.stringify([res.code, s.code, s.error || ""]);`
	for _, tt := range []struct{ name, extra, want string }{
		{"ok/token", `, token: "read-token-1"`, `[202,200,""]`},
		{"ok/token file", fmt.Sprintf(`, tokenFile: %q`, file), `[202,200,""]`},
		{"err/no token", ``, `[202,401,"Authorization: missing or wrong token: send Authorization: Bearer with the user's or the service token"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := clientVU(t, srv.URL, tt.extra)
			if got := v.mustRun(read).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if n := stub.PostsWithToken(); n != 0 {
		t.Errorf("%d placements carried a token: placing is anonymous", n)
	}
	for _, tt := range []struct{ name, opts, want string }{
		{"err/both", fmt.Sprintf(`token: "x", tokenFile: %q`, file), `option "tokenFile": give token or tokenFile, not both`},
		{"err/missing file", `tokenFile: "/nonexistent/token"`, `option "tokenFile"`},
		{"err/not one word", `token: "a b"`, `option "token": must be one word`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVU(t)
			_, err := v.run(fmt.Sprintf(`new orders.Client({baseUrl: %q, %s})`, srv.URL, tt.opts))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// The ledger records what was asked (the lines sent and their total), not
// what the API answered: an API that miscounts the total is caught by the
// verifier only if the ledger does not take its word.
func TestLedgerKeepsTheTotalItSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"orderId":"0b9d2f4e-6a3c-4d0e-9f1a-2c3b4d5e6f70","status":"pending","totalCents":1}`))
	}))
	defer srv.Close()
	v, ledger := clientVU(t, srv.URL, "")
	placeJS(t, v, `{userId: "u-1", currency: "USD", expect: "complete", idempotencyKey: "k-1",
		items: [{sku: "SKU-00001", qty: 2, priceCents: 1999}, {sku: "SKU-00002", qty: 1, priceCents: 500}],
		shippingAddress: {name: "A", line1: "1 Main St", city: "S", postalCode: "12345", country: "US"},
		payment: {method: "card", token: "tok_visa"}}`)
	l := readLedger(t, ledger)[0]
	if l.TotalCents != 4498 || l.AckTotalCents != 1 {
		t.Errorf("totalCents %d ackTotalCents %d, want 4498 (sent) and 1 (answered)", l.TotalCents, l.AckTotalCents)
	}
	want := []LedgerItem{{"SKU-00001", 2, 1999}, {"SKU-00002", 1, 500}}
	if fmt.Sprint(l.Items) != fmt.Sprint(want) {
		t.Errorf("items %v, want %v", l.Items, want)
	}
}
