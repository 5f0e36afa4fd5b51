package saga

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/web"
)

// seen is one request a fake service received.
type seen struct {
	Method, Path, Query, Key, CID string
	Body                          map[string]any
}

// fakeService answers every request with status and body, recording it.
func fakeService(t *testing.T, status int, body string) (*httptest.Server, *[]seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get(web.HeaderIdempotencyKey), r.Header.Get("X-Correlation-ID"), m})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func testActs(url string) *Activities {
	return &Activities{InventoryURL: url, PaymentsURL: url, ShippingURL: url, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

func TestStepsSendIdempotencyKeys(t *testing.T) {
	in := testOrder()
	for _, tc := range []struct {
		name, path, key, body string
		call                  func(a *Activities) (string, error)
	}{
		{"reserve", inventory.PathReservations, "o-1:reserve", `{"reservationId":"res-9","items":[{"sku":"SKU-00001","qty":1,"warehouseId":"w1"}]}`,
			func(a *Activities) (string, error) {
				r, err := a.Reserve(context.Background(), in)
				return r.ReservationID, err
			}},
		{"charge", payment.PathCharges, "o-1:charge", `{"chargeId":"res-9","status":"captured"}`,
			func(a *Activities) (string, error) {
				r, err := a.Charge(context.Background(), in)
				return r.ChargeID, err
			}},
		{"ship", shipping.PathShipments, "o-1:ship", `{"shipmentId":"res-9","trackingNumber":"T"}`,
			func(a *Activities) (string, error) {
				r, err := a.Ship(context.Background(), in)
				return r.ShipmentID, err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := fakeService(t, http.StatusCreated, tc.body)
			id, err := tc.call(testActs(srv.URL))
			if err != nil || id != "res-9" {
				t.Fatalf("got id %q err %v", id, err)
			}
			if len(*got) != 1 {
				t.Fatalf("%d requests", len(*got))
			}
			r := (*got)[0]
			if r.Method != http.MethodPost || r.Path != tc.path || r.Key != tc.key || r.CID != "cid-1" {
				t.Errorf("request %+v, want POST %s key %s cid cid-1", r, tc.path, tc.key)
			}
			if r.Body["orderId"] != "o-1" {
				t.Errorf("body %v", r.Body)
			}
		})
	}
}

func TestChargeBody(t *testing.T) {
	srv, got := fakeService(t, http.StatusCreated, `{"chargeId":"c"}`)
	if _, err := testActs(srv.URL).Charge(context.Background(), testOrder()); err != nil {
		t.Fatal(err)
	}
	b := (*got)[0].Body
	if b["amountCents"] != float64(2500) || b["currency"] != "EUR" || b["token"] != "tok_visa" {
		t.Errorf("charge body %v", b)
	}
}

func TestAnswersMapToFailureClasses(t *testing.T) {
	in := testOrder()
	reserve := func(a *Activities) error { _, err := a.Reserve(context.Background(), in); return err }
	charge := func(a *Activities) error { _, err := a.Charge(context.Background(), in); return err }
	ship := func(a *Activities) error { _, err := a.Ship(context.Background(), in); return err }
	for _, tc := range []struct {
		name     string
		call     func(a *Activities) error
		status   int
		body     string
		business string // "" for retryable
	}{
		{"err/out_of_stock", reserve, 409, `{"error":"out_of_stock","sku":"SKU-OOS"}`, inventory.ErrCodeOutOfStock},
		{"err/reserve_409_in_flight", reserve, 409, `{"error":"key_in_flight"}`, ""},
		{"err/card_declined", charge, 402, `{"error":"card_declined"}`, payment.ErrCodeCardDeclined},
		{"err/insufficient_funds", charge, 402, `{"error":"insufficient_funds"}`, payment.ErrCodeInsufficientFunds},
		{"err/402_no_body", charge, 402, ``, payment.ErrCodeCardDeclined},
		{"err/order_closed", charge, 409, `{"error":"order_closed"}`, payment.ErrCodeOrderClosed},
		{"err/undeliverable", ship, 422, `{"error":"undeliverable","field":"address.country"}`, shipping.ErrCodeUndeliverable},
		{"err/bad_request", ship, 400, `{"error":"missing","field":"items"}`, ReasonInvalidRequest + ": items"},
		{"err/500", charge, 500, `{"error":"internal error"}`, ""},
		{"err/503", reserve, 503, `upstream down`, ""},
		{"err/429", ship, 429, `{"error":"slow down"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fakeService(t, tc.status, tc.body)
			err := tc.call(testActs(srv.URL))
			if err == nil {
				t.Fatal("no error")
			}
			reason, business := BusinessReason(err)
			if tc.business == "" && business {
				t.Errorf("got business failure %q, want a retryable error", reason)
			}
			if tc.business != "" && reason != tc.business {
				t.Errorf("got %v (business %v %q), want business %q", err, business, reason, tc.business)
			}
		})
	}
}

func TestRefusedAndTimeoutAreRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	_, err = testActs("http://"+addr).Charge(context.Background(), testOrder())
	if _, business := BusinessReason(err); err == nil || business {
		t.Errorf("refused: %v, want a retryable error", err)
	}

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = testActs(hang.URL).Charge(ctx, testOrder())
	if _, business := BusinessReason(err); err == nil || business {
		t.Errorf("timeout: %v, want a retryable error", err)
	}
}

func TestCompensationsAddressTheOrder(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, tc := range []struct {
		name, path, key string
		call            func(a *Activities, ctx context.Context, in CompensationInput) error
	}{
		{CompRelease, inventory.PathReleaseByOrder, "o-1:release", (*Activities).ReleaseReservation},
		{CompRefund, payment.PathRefundByOrder, "o-1:refund", (*Activities).RefundCharge},
		{CompCancel, shipping.PathCancelByOrder, "o-1:cancel-shipment", (*Activities).CancelShipment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := fakeService(t, http.StatusOK, `{}`)
			a := testActs(srv.URL)
			a.Metrics = NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"t": tc.name}, reg))
			if err := tc.call(a, context.Background(), CompensationInput{OrderID: "o-1", CorrelationID: "cid-1", Attempt: 1}); err != nil {
				t.Fatal(err)
			}
			r := (*got)[0]
			if r.Path != tc.path || r.Query != "orderId=o-1" || r.Key != tc.key || r.CID != "cid-1" {
				t.Errorf("request %+v, want %s?orderId=o-1 key %s", r, tc.path, tc.key)
			}
			if n := value(a.Metrics.Compensations.WithLabelValues(tc.name, "ok")); n != 1 {
				t.Errorf("compensations_total{ok} = %v", n)
			}
		})
	}
}

func TestCompensationNeverGivesUpOnAnAnswer(t *testing.T) {
	// Even a 400 must not end a compensation: it is retried like any failure.
	srv, _ := fakeService(t, http.StatusBadRequest, `{"error":"missing","field":"orderId"}`)
	a := testActs(srv.URL)
	a.Metrics = NewMetrics(prometheus.NewRegistry())
	err := a.RefundCharge(context.Background(), CompensationInput{OrderID: "o-1", NowStuck: true})
	if err == nil {
		t.Fatal("no error")
	}
	if _, business := BusinessReason(err); business {
		t.Errorf("compensation error %v is non-retryable", err)
	}
	if n := value(a.Metrics.Stuck); n != 1 {
		t.Errorf("stuck_total = %v, want 1", n)
	}
	if n := value(a.Metrics.Compensations.WithLabelValues(CompRefund, "error")); n != 1 {
		t.Errorf("compensations_total{error} = %v", n)
	}
}

func TestCompensationWaitsItsBackoffBeforeTheCall(t *testing.T) {
	srv, got := fakeService(t, http.StatusOK, `{}`)
	a := testActs(srv.URL)
	start := time.Now()
	if err := a.RefundCharge(context.Background(), CompensationInput{OrderID: "o-1", Attempt: 2, Wait: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || len(*got) != 1 {
		t.Fatalf("called %d times after %s; want once, after its 100ms wait", len(*got), d)
	}
	// A cancel during the wait ends the attempt without a call.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := a.RefundCharge(ctx, CompensationInput{OrderID: "o-1", Attempt: 3, Wait: time.Minute}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if len(*got) != 1 {
		t.Fatalf("called during a cancelled wait")
	}
}

type fakeProducer struct {
	mu   sync.Mutex
	recs []*kgo.Record
	err  error
}

func (p *fakeProducer) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out kgo.ProduceResults
	for _, r := range rs {
		if p.err == nil {
			p.recs = append(p.recs, r)
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: p.err})
	}
	return out
}

func TestPublishStatusAndOutcome(t *testing.T) {
	p := &fakeProducer{}
	a := &Activities{Producer: p, Metrics: NewMetrics(prometheus.NewRegistry())}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	u := StatusUpdate{OrderID: "o-1", UserID: "u-1", CorrelationID: "cid-1", Status: "failed", Seq: 5, At: at, Reason: payment.ErrCodeCardDeclined,
		Step:  &StepResult{Step: StepCharge, Outcome: "business", Duration: 20 * time.Millisecond},
		Final: &Final{Outcome: "failed", Reason: payment.ErrCodeCardDeclined, ReasonCode: payment.ErrCodeCardDeclined, TotalCents: 2500, Currency: "EUR", CompensationDuration: 40 * time.Millisecond}}
	if err := a.Publish(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if len(p.recs) != 2 {
		t.Fatalf("%d records, want status + analytics", len(p.recs))
	}
	st, an := p.recs[0], p.recs[1]
	if st.Topic != event.TopicOrderStatus || string(st.Key) != "u-1" || an.Topic != event.TopicAnalytics || string(an.Key) != "u-1" {
		t.Errorf("topics/keys: %s/%s %s/%s", st.Topic, st.Key, an.Topic, an.Key)
	}
	if kafka.Header(st, event.HeaderCorrelationID) != "cid-1" || kafka.Header(st, event.HeaderSource) != Source ||
		kafka.Header(st, event.HeaderEventType) != event.TypeOrderStatusChanged {
		t.Errorf("headers %v", st.Headers)
	}
	env, payload, err := event.Parse(st.Value)
	if err != nil {
		t.Fatalf("status record does not parse: %v", err)
	}
	sc := payload.(*event.OrderStatusChanged)
	if sc.Seq != 5 || sc.Status != "failed" || !sc.At.Equal(at) || sc.Reason != payment.ErrCodeCardDeclined || env.ID != statusEventID("o-1", 5) {
		t.Errorf("status event %+v id %s", sc, env.ID)
	}
	if _, payload, err := event.Parse(an.Value); err != nil || payload.(*event.AnalyticsOutcome).Status != "failed" {
		t.Errorf("analytics record: %v %+v", err, payload)
	}
	// A retried publish carries the same event id.
	if err := a.Publish(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	again, _ := event.Decode(p.recs[2].Value)
	if again.ID != env.ID {
		t.Errorf("republished id %s, first %s", again.ID, env.ID)
	}
	if n := value(a.Metrics.Outcomes.WithLabelValues("failed", payment.ErrCodeCardDeclined)); n != 2 {
		t.Errorf("outcomes_total = %v, want 2 (one per first attempt)", n)
	}

	p.err = errors.New("broker down")
	if err := a.Publish(context.Background(), u); err == nil {
		t.Error("publish with the broker down succeeded")
	}
}

type fakeQueue struct {
	mu    sync.Mutex
	tasks map[string]*asynq.Task
	err   error
}

func (q *fakeQueue) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return nil, q.err
	}
	var p notification.Payload
	_ = json.Unmarshal(task.Payload(), &p)
	id := notification.TaskID(p.OrderID, p.Template)
	if _, dup := q.tasks[id]; dup {
		return nil, asynq.ErrTaskIDConflict
	}
	q.tasks[id] = task
	return &asynq.TaskInfo{ID: id}, nil
}

func TestNotifyIsIdempotent(t *testing.T) {
	q := &fakeQueue{tasks: map[string]*asynq.Task{}}
	a := &Activities{Tasks: q}
	in := NotifyInput{OrderID: "o-1", UserID: "u-1", CorrelationID: "cid-1", Template: notification.TemplateOrderShipped, Data: map[string]string{"trackingNumber": "T"}}
	for i := 0; i < 2; i++ {
		if err := a.Notify(context.Background(), in); err != nil {
			t.Fatalf("notify %d: %v", i, err)
		}
	}
	if len(q.tasks) != 1 {
		t.Errorf("%d tasks, want 1", len(q.tasks))
	}
	task := q.tasks["o-1:order-shipped"]
	if task == nil || task.Type() != notification.TemplateOrderShipped || !strings.Contains(string(task.Payload()), `"trackingNumber":"T"`) {
		t.Errorf("task %+v", task)
	}
	q.err = errors.New("redis down")
	if err := a.Notify(context.Background(), NotifyInput{OrderID: "o-2", UserID: "u", Template: notification.TemplateOrderFailed}); err == nil {
		t.Error("notify with Redis down succeeded")
	}
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestStepAnnouncesBeforeItCalls: a step publishes its statuses, in one
// produce and in order, before it calls the service; when Kafka refuses them
// it calls nothing and says so with ErrTypeUnannounced (not retryable, so
// the workflow, not the step's outage budget, deals with Kafka).
func TestStepAnnouncesBeforeItCalls(t *testing.T) {
	srv, got := fakeService(t, http.StatusCreated, `{"reservationId":"res-1"}`)
	p := &fakeProducer{}
	a := testActs(srv.URL)
	a.Producer = p
	in := testOrder()
	in.Announce = []StatusUpdate{
		{OrderID: "o-1", UserID: "u-1", Status: "processing", Seq: 1, At: time.Now()},
		{OrderID: "o-1", UserID: "u-1", Status: "reserving_inventory", Seq: 2, At: time.Now()},
	}
	if _, err := a.Reserve(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(p.recs) != 2 || len(*got) != 1 {
		t.Fatalf("records %d, service calls %d; want 2 then 1", len(p.recs), len(*got))
	}
	for i, want := range []string{"processing", "reserving_inventory"} {
		_, payload, err := event.Parse(p.recs[i].Value)
		if err != nil || payload.(*event.OrderStatusChanged).Status != want {
			t.Errorf("record %d: %v %+v, want %s", i, err, payload, want)
		}
	}

	p.err = errors.New("broker down")
	_, err := a.Reserve(context.Background(), in)
	if !IsUnannounced(err) {
		t.Fatalf("err = %v, want ErrTypeUnannounced", err)
	}
	if len(*got) != 1 {
		t.Errorf("the service was called although the statuses were not published")
	}
}

// A new saga is its Reserve's first attempt: that, and only that, counts
// towards the load the worker's saga budget leaves retries.
func TestOnlyReserveCountsANewSaga(t *testing.T) {
	in := testOrder()
	srv, _ := fakeService(t, http.StatusCreated, `{"reservationId":"r","chargeId":"c","status":"captured","shipmentId":"s","trackingNumber":"T"}`)
	a := testActs(srv.URL)
	a.Pacer = NewPacer(1, 1).WithSagaBudget(10)
	for i := 0; i < 4; i++ {
		if _, err := a.Reserve(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Charge(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Ship(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Pacer.Rate(); got != 8 { // 4 new sagas over the 2 s window: 2/s
		t.Errorf("retry rate %g after 4 sagas' steps, want 10-2 = 8", got)
	}
}
