//go:build integration

package saga

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

// EnvRecordHistory names a directory: when set, the histories of this
// test's runs are written there (platform/saga/testdata) for the replay test.
const EnvRecordHistory = "STAMPEDE_RECORD_HISTORY"

// TestSagaOnTheRealStack runs the workflow on a private task queue against
// the stack's Temporal, Inventory, Payments (through toxiproxy), Shipping,
// Kafka and Redis, checks what the services hold afterwards, and replays
// each run's history with the current code.
func TestSagaOnTheRealStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, acts, queue := startWorker(t, ctx, config.ServiceURL(config.Payments))

	for _, tc := range []struct {
		name, token, country, status, reason string
		comps                                []string
		cancelAtStart                        bool
	}{
		{"delivered", "tok_visa", "FR", "delivered", "", nil, false},
		{"declined", "tok_declined", "FR", "failed", payment.ErrCodeCardDeclined, []string{CompRelease}, false},
		{"undeliverable", "tok_visa", "XX", "failed", shipping.ErrCodeUndeliverable, []string{CompRefund, CompRelease}, false},
		{"cancelled", "tok_visa", "FR", "cancelled", "changed my mind", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testOrder()
			in.Order.OrderID = uuid.NewString()
			in.Order.UserID = "saga-it-user"
			in.CorrelationID = "saga-it-" + tc.name
			in.Order.Payment.Token = tc.token
			in.Order.ShippingAddress.Country = tc.country
			in.Order.CreatedAt = time.Now().UTC()
			in.DeliveryWait = 2 * time.Second
			opts := StartOptionsFor(in)
			opts.TaskQueue = queue
			var run client.WorkflowRun
			var err error
			if tc.cancelAtStart {
				opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_UNSPECIFIED // signal-with-start allows no FAIL
				run, err = c.SignalWithStartWorkflow(ctx, opts.ID, SignalCancel, CancelRequest{Reason: "changed my mind"}, opts, WorkflowType, in)
			} else {
				run, err = c.ExecuteWorkflow(ctx, opts, WorkflowType, in)
			}
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			var res Result
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("workflow: %v", err)
			}
			if res.Status != tc.status || res.FailureReason != tc.reason {
				t.Fatalf("status %q reason %q, want %q %q", res.Status, res.FailureReason, tc.status, tc.reason)
			}
			var comps []string
			for _, cs := range res.Compensations {
				comps = append(comps, cs.Name)
				if cs.CompletedAt.IsZero() {
					t.Errorf("compensation %s not completed", cs.Name)
				}
			}
			if fmt.Sprint(comps) != fmt.Sprint(tc.comps) {
				t.Errorf("compensations %v, want %v", comps, tc.comps)
			}
			checkServices(t, ctx, acts, in.Order.OrderID, tc.status == "delivered")

			hist := history(t, ctx, c, run.GetID(), run.GetRunID())
			replayer := worker.NewWorkflowReplayer()
			RegisterWorkflow(replayer, &Workflow{})
			if err := replayer.ReplayWorkflowHistory(nil, hist); err != nil {
				t.Errorf("replay of the live history: %v", err)
			}
			if dir := os.Getenv(EnvRecordHistory); dir != "" {
				b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "history-"+tc.name+".json"), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func history(t *testing.T, ctx context.Context, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, id, runID, false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		h.Events = append(h.Events, e)
	}
	return h
}

// checkServices reads the services' own records of the order: a delivered
// order holds its reservation, one captured unrefunded charge and one live
// shipment; a failed one holds nothing.
func checkServices(t *testing.T, ctx context.Context, a *Activities, orderID string, delivered bool) {
	t.Helper()
	get := func(url string, v any) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := a.HTTP.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	var res struct {
		Reservations []struct{ Status string } `json:"reservations"`
	}
	get(a.InventoryURL+"/v1/reservations?orderId="+orderID, &res)
	var pay struct {
		Charges []struct {
			Status  string
			Refunds []json.RawMessage
		} `json:"charges"`
	}
	get(a.PaymentsURL+"/v1/charges?orderId="+orderID, &pay)
	held, captured, refunded := 0, 0, 0
	for _, r := range res.Reservations {
		if r.Status == "reserved" {
			held++
		}
	}
	for _, c := range pay.Charges {
		if c.Status == "captured" || c.Status == "refunded" {
			captured++
		}
		if len(c.Refunds) > 0 {
			refunded++
		}
	}
	if delivered && (held != 1 || captured != 1 || refunded != 0) {
		t.Errorf("delivered order: %d reservations held, %d charges captured, %d refunded; want 1, 1, 0", held, captured, refunded)
	}
	if !delivered && (held != 0 || refunded != captured) {
		t.Errorf("failed order: %d reservations held, %d captured, %d refunded; want nothing held and every capture refunded", held, captured, refunded)
	}
}

// startWorker runs a worker of the saga on a private task queue, calling
// the stack's services (Payments at paymentsURL), until the test ends.
func startWorker(t *testing.T, ctx context.Context, paymentsURL string) (client.Client, *Activities, string) {
	t.Helper()
	log := telemetry.NewLogger("saga-it", nil)
	c, err := client.DialContext(ctx, client.Options{HostPort: config.TemporalAddress(), Namespace: config.TemporalNamespace()})
	if err != nil {
		t.Fatalf("temporal: %v", err)
	}
	t.Cleanup(c.Close)
	producer, err := kgo.NewClient(append(kafka.BaseOpts("saga-it", config.KafkaBrokers()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	redisOpt, err := asynq.ParseRedisURI(config.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	tasks := asynq.NewClient(redisOpt)
	t.Cleanup(func() { tasks.Close() })

	hc, err := web.ServiceClient(&http.Client{Timeout: 10 * time.Second}) // as the real worker calls
	if err != nil {
		t.Fatal(err)
	}
	acts := &Activities{
		InventoryURL: config.ServiceURL(config.Inventory),
		PaymentsURL:  paymentsURL,
		ShippingURL:  config.ServiceURL(config.Shipping),
		HTTP:         hc,
		Producer:     producer,
		Tasks:        tasks,
		Metrics:      NewMetrics(prometheus.NewRegistry()),
		Log:          log,
	}
	queue := "saga-it-" + uuid.NewString()
	w := worker.New(c, queue, worker.Options{WorkerStopTimeout: 5 * time.Second})
	Register(w, &Workflow{}, acts)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return c, acts, queue
}

// flakyProxy forwards to a service, and can go down (connection refused) and
// come back on the same port.
type flakyProxy struct {
	t      *testing.T
	addr   string
	target *url.URL
	mu     sync.Mutex
	srv    *http.Server
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{t: t, addr: ln.Addr().String(), target: u}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *flakyProxy) url() string { return "http://" + p.addr }

func (p *flakyProxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The Host sent on is the target's: Payments answers only to its own
	// names (and to its toxiproxy address).
	p.srv = &http.Server{Handler: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(p.target) }}}
	go p.srv.Serve(ln)
}

func (p *flakyProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

func (p *flakyProxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Errorf("proxy back up on %s: %v", p.addr, err)
		return
	}
	p.serve(ln)
}

// TestPaymentsOutage refuses Payments connections for a while: an outage
// shorter than the budget ends with the order delivered and nothing undone;
// one longer than the budget fails the order with the reason, and the refund
// (by order id) keeps retrying until Payments is back.
func TestPaymentsOutage(t *testing.T) {
	for _, tc := range []struct {
		name           string
		budget, outage time.Duration
		status, reason string
		comps          []string
	}{
		{"shorter", 0, 6 * time.Second, "delivered", "", nil},
		{"longer", 3 * time.Second, 8 * time.Second, "failed", "payments unavailable for 3s", []string{CompRefund, CompRelease}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			proxy := newFlakyProxy(t, config.ServiceURL(config.Payments))
			c, acts, queue := startWorker(t, ctx, proxy.url())
			in := testOrder()
			in.Order.OrderID = uuid.NewString()
			in.Order.UserID = "saga-it-user"
			in.CorrelationID = "saga-it-outage-" + tc.name
			in.Order.CreatedAt = time.Now().UTC()
			in.DeliveryWait = time.Second
			in.OutageBudget = tc.budget
			opts := StartOptionsFor(in)
			opts.TaskQueue = queue

			proxy.down()
			outageStart := time.Now()
			go func() {
				time.Sleep(tc.outage)
				proxy.up()
			}()
			run, err := c.ExecuteWorkflow(ctx, opts, WorkflowType, in)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			var res Result
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("workflow: %v", err)
			}
			if res.Status != tc.status || res.FailureReason != tc.reason {
				t.Fatalf("status %q reason %q, want %q %q", res.Status, res.FailureReason, tc.status, tc.reason)
			}
			var comps []string
			for _, cs := range res.Compensations {
				comps = append(comps, cs.Name)
				if cs.Name == CompRefund && (cs.Attempts < 2 || cs.CompletedAt.Sub(outageStart) < tc.outage-time.Second) {
					t.Errorf("refund %+v: want retried until Payments came back", cs)
				}
			}
			if fmt.Sprint(comps) != fmt.Sprint(tc.comps) {
				t.Errorf("compensations %v, want %v", comps, tc.comps)
			}
			checkServices(t, ctx, acts, in.Order.OrderID, tc.status == "delivered")
			t.Logf("%s: %s after %v (steps %+v)", tc.name, res.Status, time.Since(outageStart).Round(time.Millisecond), res.Steps)
		})
	}
}
