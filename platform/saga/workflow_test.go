package saga

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
)

// fakes are the services as the workflow sees them; nil members succeed.
type fakes struct {
	reserve func(attempt int) (Reservation, error)
	charge  func(attempt int) (Charge, error)
	ship    func(attempt int) (Shipment, error)
	comp    map[string]func(in CompensationInput) error
	// unannounced fails the n-th step call that carries statuses as
	// unannounced (Kafka refused them) when it returns true.
	unannounced func(n int) bool
}

// recorder keeps what the saga did, in order.
type recorder struct {
	mu        sync.Mutex
	calls     []string // steps and compensations, e.g. "reserve_inventory", "refund_charge"
	updates   []StatusUpdate
	notified  []string
	attempts  map[string]int
	comps     []CompensationInput
	reports   int // Report activities run
	announces int // step activities that carried statuses to announce
}

func (r *recorder) add(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attempts == nil {
		r.attempts = map[string]int{}
	}
	r.attempts[name]++
	r.calls = append(r.calls, name)
	return r.attempts[name]
}

func (r *recorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.updates {
		out = append(out, u.Status)
	}
	return out
}

// compensationCalls returns the distinct compensations in the order they first ran.
func (r *recorder) compensationCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if (c == CompRelease || c == CompRefund || c == CompCancel) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func testOrder() Input {
	return Input{
		CorrelationID: "cid-1",
		Order: event.OrderCreated{
			OrderID: "o-1", UserID: "u-1", Currency: "EUR", TotalCents: 2500,
			Items:           []event.LineItem{{SKU: "SKU-00001", Qty: 1, PriceCents: 2500}},
			ShippingAddress: event.Address{Name: "A", Line1: "1 Road", City: "Town", PostalCode: "12345", Country: "FR"},
			Payment:         event.Payment{Method: "card", Token: "tok_visa"},
		},
	}
}

var errRefused = errors.New("dial tcp 127.0.0.1:18082: connect: connection refused")

func business(reason string) error {
	return temporal.NewNonRetryableApplicationError(reason, ErrTypeBusiness, nil)
}

func newEnv(t *testing.T, f fakes) (*testsuite.TestWorkflowEnvironment, *recorder) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	a := &Activities{}
	Register(env, &Workflow{}, a)
	r := &recorder{}
	env.OnActivity(a.Reserve, mock.Anything, mock.Anything).Return(func(ctx context.Context, in Input) (Reservation, error) {
		n := r.add(StepReserve)
		if err := r.announced(n, in, f.unannounced); err != nil {
			return Reservation{}, err
		}
		if f.reserve != nil {
			return f.reserve(n)
		}
		return Reservation{ReservationID: "res-1"}, nil
	})
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).Return(func(ctx context.Context, in Input) (Charge, error) {
		n := r.add(StepCharge)
		if err := r.announced(n, in, f.unannounced); err != nil {
			return Charge{}, err
		}
		if f.charge != nil {
			return f.charge(n)
		}
		return Charge{ChargeID: "ch-1", Status: "captured"}, nil
	})
	env.OnActivity(a.Ship, mock.Anything, mock.Anything).Return(func(ctx context.Context, in Input) (Shipment, error) {
		n := r.add(StepShip)
		if err := r.announced(n, in, f.unannounced); err != nil {
			return Shipment{}, err
		}
		if f.ship != nil {
			return f.ship(n)
		}
		return Shipment{ShipmentID: "sh-1", TrackingNumber: "TRK1"}, nil
	})
	for name, act := range map[string]any{CompRelease: a.ReleaseReservation, CompRefund: a.RefundCharge, CompCancel: a.CancelShipment} {
		env.OnActivity(act, mock.Anything, mock.Anything).Return(func(ctx context.Context, in CompensationInput) error {
			r.add(name)
			r.mu.Lock()
			r.comps = append(r.comps, in)
			r.mu.Unlock()
			if fn := f.comp[name]; fn != nil {
				return fn(in)
			}
			return nil
		})
	}
	env.OnActivity(a.Publish, mock.Anything, mock.Anything).Return(func(ctx context.Context, u StatusUpdate) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.updates = append(r.updates, u)
		return nil
	})
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(ctx context.Context, n NotifyInput) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.notified = append(r.notified, n.Template)
		return nil
	})
	env.OnActivity(a.Report, mock.Anything, mock.Anything).Return(func(ctx context.Context, rep Report) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.reports++
		r.publish(rep.Statuses...)
		if rep.Notify != nil {
			r.notified = append(r.notified, rep.Notify.Template)
		}
		return nil
	})
	return env, r
}

// announced records the statuses a step announces on its first attempt, as
// the activity does, or fails that attempt as unannounced when fail says so.
func (r *recorder) announced(attempt int, in Input, fail func(call int) bool) error {
	if len(in.Announce) == 0 || attempt > 1 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.announces++
	if fail != nil && fail(r.announces) {
		return temporal.NewNonRetryableApplicationError("kafka down", ErrTypeUnannounced, nil)
	}
	r.publish(in.Announce...)
	return nil
}

// publish records updates as the projection applies them: a seq seen before
// (a status announced again with its event id) is a duplicate.
func (r *recorder) publish(us ...StatusUpdate) {
	for _, u := range us {
		if !slices.ContainsFunc(r.updates, func(v StatusUpdate) bool { return v.Seq == u.Seq }) {
			r.updates = append(r.updates, u)
		}
	}
}

func execute(t *testing.T, env *testsuite.TestWorkflowEnvironment, in Input) Result {
	t.Helper()
	env.ExecuteWorkflow(WorkflowType, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("result: %v", err)
	}
	return res
}

func checkSeq(t *testing.T, r *recorder) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, u := range r.updates {
		if u.Seq != i+1 {
			t.Errorf("update %d (%s): seq %d, want %d", i, u.Status, u.Seq, i+1)
		}
		if u.At.IsZero() || u.UserID != "u-1" || u.CorrelationID != "cid-1" {
			t.Errorf("update %d: at %v user %q cid %q", i, u.At, u.UserID, u.CorrelationID)
		}
	}
	if n := len(r.updates); n > 0 && r.updates[n-1].Final == nil {
		t.Errorf("last update %s carries no Final", r.updates[n-1].Status)
	}
}

var happyStatuses = []string{
	order.StatusProcessing, order.StatusReservingInventory, order.StatusChargingPayment,
	order.StatusCreatingShipment, order.StatusShipped, order.StatusInTransit, order.StatusDelivered,
}

func TestHappyPathWaitsFourteenDays(t *testing.T) {
	env, r := newEnv(t, fakes{})
	start := env.Now()
	res := execute(t, env, testOrder())
	if got := env.Now().Sub(start); got < DefaultDeliveryWait {
		t.Errorf("workflow time elapsed %v, want at least the 14-day delivery wait", got)
	}
	if res.Status != order.StatusDelivered {
		t.Errorf("status %q, want delivered", res.Status)
	}
	if got := r.statuses(); !slices.Equal(got, happyStatuses) {
		t.Errorf("statuses\n got %v\nwant %v", got, happyStatuses)
	}
	if want := []string{"order-shipped", "delivery-confirmed"}; !slices.Equal(r.notified, want) {
		t.Errorf("notified %v, want %v", r.notified, want)
	}
	if len(res.Compensations) != 0 || len(r.compensationCalls()) != 0 {
		t.Errorf("compensations %v on the happy path", r.compensationCalls())
	}
	if res.ReservationID != "res-1" || res.ChargeID != "ch-1" || res.ShipmentID != "sh-1" || res.TrackingNumber != "TRK1" {
		t.Errorf("ids in result: %+v", res)
	}
	checkSeq(t, r)
	last := r.updates[len(r.updates)-1]
	if last.Final.Outcome != order.StatusDelivered || last.Final.TotalCents != 2500 {
		t.Errorf("final %+v", last.Final)
	}
}

func TestDeliveredSignalEndsTheWait(t *testing.T) {
	env, r := newEnv(t, fakes{})
	start := env.Now()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalDelivered, DeliveredSignal{ShipmentID: "sh-1"})
	}, time.Hour)
	res := execute(t, env, testOrder())
	if got := env.Now().Sub(start); got > 2*time.Hour {
		t.Errorf("took %v of workflow time, want about 1h (the signal)", got)
	}
	if res.Status != order.StatusDelivered || !slices.Equal(r.statuses(), happyStatuses) {
		t.Errorf("status %q, statuses %v", res.Status, r.statuses())
	}
}

func TestDeliveryWaitFromInput(t *testing.T) {
	env, _ := newEnv(t, fakes{})
	start := env.Now()
	in := testOrder()
	in.DeliveryWait = 30 * time.Second
	execute(t, env, in)
	if got := env.Now().Sub(start); got > time.Minute {
		t.Errorf("took %v, want about the 30s delivery wait", got)
	}
}

func TestBusinessFailuresCompensateInReverse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     fakes
		step  string
		comps []string
	}{
		{"out_of_stock/reserve", fakes{reserve: func(int) (Reservation, error) { return Reservation{}, business(inventory.ErrCodeOutOfStock) }},
			inventory.ErrCodeOutOfStock, nil},
		{"card_declined/charge", fakes{charge: func(int) (Charge, error) { return Charge{}, business(payment.ErrCodeCardDeclined) }},
			payment.ErrCodeCardDeclined, []string{CompRelease}},
		{"insufficient_funds/charge", fakes{charge: func(int) (Charge, error) { return Charge{}, business(payment.ErrCodeInsufficientFunds) }},
			payment.ErrCodeInsufficientFunds, []string{CompRelease}},
		{"undeliverable/ship", fakes{ship: func(int) (Shipment, error) { return Shipment{}, business(shipping.ErrCodeUndeliverable) }},
			shipping.ErrCodeUndeliverable, []string{CompRefund, CompRelease}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, r := newEnv(t, tc.f)
			res := execute(t, env, testOrder())
			if res.Status != order.StatusFailed || res.FailureReason != tc.step {
				t.Errorf("status %q reason %q, want failed %q", res.Status, res.FailureReason, tc.step)
			}
			if got := r.compensationCalls(); !slices.Equal(got, tc.comps) {
				t.Errorf("compensations %v, want %v", got, tc.comps)
			}
			for _, c := range res.Compensations {
				if c.CompletedAt.IsZero() || c.Attempts != 1 {
					t.Errorf("compensation %+v not completed in one attempt", c)
				}
			}
			if r.attempts[tc.name[strings.Index(tc.name, "/")+1:]] > 1 {
				t.Errorf("a business failure was retried: %v", r.attempts)
			}
			st := r.statuses()
			if got := st[len(st)-2:]; !slices.Equal(got, []string{order.StatusCompensating, order.StatusFailed}) {
				t.Errorf("last statuses %v", got)
			}
			if !slices.Equal(r.notified, []string{"order-failed"}) {
				t.Errorf("notified %v, want [order-failed]", r.notified)
			}
			if last := r.updates[len(r.updates)-1]; last.Reason != tc.step || last.Final.ReasonCode != tc.step {
				t.Errorf("final update reason %q code %q", last.Reason, last.Final.ReasonCode)
			}
			if res.FailedAt.IsZero() || res.CompensatedAt.Before(res.FailedAt) {
				t.Errorf("failedAt %v compensatedAt %v", res.FailedAt, res.CompensatedAt)
			}
			checkSeq(t, r)
		})
	}
}

func TestOutageShorterThanBudgetCompletes(t *testing.T) {
	// Refused for the attempts at 0, 1, 3, 7, 15, 31 s; the one at 61 s succeeds.
	env, r := newEnv(t, fakes{charge: func(n int) (Charge, error) {
		if n <= 6 {
			return Charge{}, errRefused
		}
		return Charge{ChargeID: "ch-1"}, nil
	}})
	res := execute(t, env, testOrder())
	if res.Status != order.StatusDelivered {
		t.Fatalf("status %q (%s), want delivered", res.Status, res.FailureReason)
	}
	if got := r.compensationCalls(); len(got) != 0 {
		t.Errorf("compensations %v after a short outage", got)
	}
	if r.attempts[StepCharge] != 7 {
		t.Errorf("charge attempts %d, want 7", r.attempts[StepCharge])
	}
	for _, s := range res.Steps {
		if s.Step == StepCharge {
			if d := s.FinishedAt.Sub(s.StartedAt); d < 56*time.Second || d > 66*time.Second {
				t.Errorf("charge took %v of workflow time, want 61s (1s, x2, 30s max backoff)", d)
			}
		}
	}
}

// An outage that ends after the backoff's last try but within the budget
// must not fail the order: with a 10 s budget the retries are at 0, 1, 3
// and 7 s, the next would be at 15 s, and the SDK gives up at 7 s; the step
// waits for the budget's end and tries once more.
func TestOutageEndingInTheLastBackoffCompletes(t *testing.T) {
	env, r := newEnv(t, fakes{charge: func(n int) (Charge, error) {
		if n <= 4 {
			return Charge{}, errRefused
		}
		return Charge{ChargeID: "ch-1"}, nil
	}})
	in := testOrder()
	in.OutageBudget = 10 * time.Second
	res := execute(t, env, in)
	if res.Status != order.StatusDelivered {
		t.Fatalf("status %q (%s), want delivered: an 8 s outage is inside the 10 s budget", res.Status, res.FailureReason)
	}
	if r.attempts[StepCharge] != 5 {
		t.Errorf("charge attempts %d, want 5 (4 by the retry policy, 1 at the budget's end)", r.attempts[StepCharge])
	}
	if got := r.compensationCalls(); len(got) != 0 {
		t.Errorf("compensations %v", got)
	}
}

// A cancel during the wait for the budget's end ends the wait: the order is
// cancelled then, not at the budget's end, and the last attempt never runs.
func TestCancelDuringTheWaitForTheBudgetsEnd(t *testing.T) {
	env, r := newEnv(t, fakes{charge: func(int) (Charge, error) { return Charge{}, errRefused }})
	in := testOrder()
	in.OutageBudget = 10 * time.Second
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalCancel, CancelRequest{Reason: "changed my mind"})
	}, 8*time.Second) // the retries gave up at 7 s
	res := execute(t, env, in)
	if res.Status != order.StatusCancelled {
		t.Fatalf("status %q (%s), want cancelled", res.Status, res.FailureReason)
	}
	if r.attempts[StepCharge] != 4 {
		t.Errorf("charge attempts %d, want the retry policy's 4 and no last one", r.attempts[StepCharge])
	}
	for _, s := range res.Steps {
		if s.Step == StepCharge && s.FinishedAt.Sub(s.StartedAt) > 9*time.Second {
			t.Errorf("charge ended %v after it began: the cancel at 8 s did not end the wait", s.FinishedAt.Sub(s.StartedAt))
		}
	}
}

func TestOutageLongerThanBudgetCompensates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget time.Duration
		reason string
	}{
		{"default", 0, "payments unavailable for 10m0s"},
		{"input", 2 * time.Minute, "payments unavailable for 2m0s"},
		{"chaos full profile's", 10 * time.Second, "payments unavailable for 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, r := newEnv(t, fakes{charge: func(int) (Charge, error) { return Charge{}, errRefused }})
			in := testOrder()
			in.OutageBudget = tc.budget
			res := execute(t, env, in)
			if res.Status != order.StatusFailed || res.FailureReason != tc.reason {
				t.Fatalf("status %q reason %q, want failed %q", res.Status, res.FailureReason, tc.reason)
			}
			// The charge may have landed with its answer lost: refund by order id.
			if got, want := r.compensationCalls(), []string{CompRefund, CompRelease}; !slices.Equal(got, want) {
				t.Errorf("compensations %v, want %v", got, want)
			}
			budget := tc.budget
			if budget == 0 {
				budget = DefaultOutageBudget
			}
			for _, s := range res.Steps {
				if s.Step == StepCharge {
					// The whole budget, then one last attempt at its end:
					// the backoff alone would give up up to 30 s early.
					if d := s.FinishedAt.Sub(s.StartedAt); d < budget || d > budget+attemptTimeout {
						t.Errorf("charge retried for %v, want the whole %v budget and one last attempt", d, budget)
					}
					if !strings.Contains(s.Error, "connection refused") {
						t.Errorf("step error %q", s.Error)
					}
				}
			}
			if last := r.updates[len(r.updates)-1]; last.Final.ReasonCode != "payments_unavailable" {
				t.Errorf("reason code %q", last.Final.ReasonCode)
			}
		})
	}
}

// TestCompensationRetriedUntilItSucceeds: the refund fails five times; its
// waits of 1, 2, 4 and 8 s ride on the next attempt (no timer, no trip
// through Temporal's queues), 16 s and more are durable timers.
func TestCompensationRetriedUntilItSucceeds(t *testing.T) {
	env, r := newEnv(t, fakes{
		ship: func(int) (Shipment, error) { return Shipment{}, business(shipping.ErrCodeUndeliverable) },
		comp: map[string]func(CompensationInput) error{
			CompRefund: func(in CompensationInput) error {
				if in.Attempt <= 5 {
					return errors.New("payments: HTTP 503")
				}
				return nil
			},
		},
	})
	var timers []time.Duration
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { timers = append(timers, d) })
	res := execute(t, env, testOrder())
	if res.Status != order.StatusFailed {
		t.Fatalf("status %q", res.Status)
	}
	if len(r.comps) < 6 {
		t.Fatalf("%d compensation attempts, want the refund's six first", len(r.comps))
	}
	var waits []time.Duration
	for _, in := range r.comps[:6] { // the refund's attempts, then the release's
		waits = append(waits, in.Wait)
	}
	if want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 0}; !slices.Equal(waits, want) {
		t.Errorf("refund waits %v, want %v", waits, want)
	}
	if want := []time.Duration{16 * time.Second}; !slices.Equal(timers, want) {
		t.Errorf("timers %v, want %v", timers, want)
	}
	if got, want := r.compensationCalls(), []string{CompRefund, CompRelease}; !slices.Equal(got, want) {
		t.Errorf("compensations %v, want %v", got, want)
	}
	if r.attempts[CompRefund] != 6 || r.attempts[CompRelease] != 1 {
		t.Errorf("attempts %v, want refund 6, release 1", r.attempts)
	}
	refund := res.Compensations[0]
	if refund.Name != CompRefund || refund.Attempts != 6 || refund.CompletedAt.IsZero() || refund.Stuck {
		t.Errorf("refund state %+v", refund)
	}
	if refund.LastError != "payments: HTTP 503" {
		t.Errorf("last error %q", refund.LastError)
	}
	// The release waits for the refund: reverse order holds through retries.
	if i := slices.Index(r.calls, CompRelease); i < slices.Index(r.calls, CompRefund)+5 {
		t.Errorf("release ran before the refund finished: %v", r.calls)
	}
}

func TestStuckCompensationIsVisible(t *testing.T) {
	env, r := newEnv(t, fakes{
		charge: func(int) (Charge, error) { return Charge{}, business(payment.ErrCodeCardDeclined) },
		comp: map[string]func(CompensationInput) error{
			CompRelease: func(in CompensationInput) error {
				if in.Attempt <= 8 {
					return errors.New("inventory: HTTP 500")
				}
				return nil
			},
		},
	})
	var during Status
	// Attempts 1-5 fail at once on the test clock (their 1-8 s waits are the
	// mocked attempts' own), 6-8 at 16, 46 and 76 s (timers of 16 and 30 s);
	// query at 70 s.
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&during); err != nil {
			t.Errorf("decode: %v", err)
		}
	}, 70*time.Second)
	res := execute(t, env, testOrder())
	if during.Status != order.StatusCompensating || len(during.Compensations) != 1 {
		t.Fatalf("status during %+v", during)
	}
	c := during.Compensations[0]
	if !c.Stuck || c.Attempts < 6 || c.LastError != "inventory: HTTP 500" || !c.CompletedAt.IsZero() {
		t.Errorf("stuck compensation as queried: %+v", c)
	}
	if res.Status != order.StatusFailed || res.Compensations[0].CompletedAt.IsZero() || res.Compensations[0].Stuck {
		t.Errorf("final %+v", res.Compensations)
	}
	stuckReports := 0
	for _, in := range r.comps {
		if in.NowStuck {
			stuckReports++
		}
	}
	if stuckReports != 1 {
		t.Errorf("stuck reported %d times to the metric, want once", stuckReports)
	}
}

func TestCancel(t *testing.T) {
	down := func(int) (Reservation, error) { return Reservation{}, errRefused }
	for _, tc := range []struct {
		name  string
		f     fakes
		comps []string
	}{
		{"during reserve", fakes{reserve: down}, []string{CompRelease}},
		{"during charge", fakes{charge: func(int) (Charge, error) { return Charge{}, errRefused }}, []string{CompRefund, CompRelease}},
		{"during ship", fakes{ship: func(int) (Shipment, error) { return Shipment{}, errRefused }}, []string{CompCancel, CompRefund, CompRelease}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, r := newEnv(t, tc.f)
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(SignalCancel, CancelRequest{Reason: "changed my mind"})
			}, 5*time.Second)
			res := execute(t, env, testOrder())
			if res.Status != order.StatusCancelled || res.FailureReason != "changed my mind" {
				t.Errorf("status %q reason %q, want cancelled", res.Status, res.FailureReason)
			}
			if got := r.compensationCalls(); !slices.Equal(got, tc.comps) {
				t.Errorf("compensations %v, want %v", got, tc.comps)
			}
			if !slices.Equal(r.notified, []string{"order-cancelled"}) {
				t.Errorf("notified %v", r.notified)
			}
			st := r.statuses()
			if got := st[len(st)-1]; got != order.StatusCancelled {
				t.Errorf("last status %q", got)
			}
			checkSeq(t, r)
		})
	}
}

func TestCancelBeforeFirstStep(t *testing.T) {
	env, r := newEnv(t, fakes{})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, CancelRequest{}) }, 0)
	res := execute(t, env, testOrder())
	if res.Status != order.StatusCancelled || res.FailureReason != DefaultCancelReason {
		t.Errorf("status %q reason %q", res.Status, res.FailureReason)
	}
	if r.attempts[StepShip] != 0 {
		t.Errorf("shipped after a cancel: %v", r.calls)
	}
}

func TestCancelRefusedAfterShipment(t *testing.T) {
	env, r := newEnv(t, fakes{})
	var during Status
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalCancel, CancelRequest{Reason: "too late"})
	}, time.Hour)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			err = v.Get(&during)
		}
		if err != nil {
			t.Errorf("query: %v", err)
		}
	}, 2*time.Hour)
	res := execute(t, env, testOrder())
	if res.Status != order.StatusDelivered {
		t.Errorf("status %q, want delivered", res.Status)
	}
	if during.Status != order.StatusInTransit || !strings.Contains(during.CancelRefused, "shipped") {
		t.Errorf("status during the wait %q, cancelRefused %q", during.Status, during.CancelRefused)
	}
	if ok, _ := Cancellable(during); ok {
		t.Error("Cancellable says yes in transit")
	}
	if len(r.compensationCalls()) != 0 {
		t.Errorf("compensated after a refused cancel: %v", r.compensationCalls())
	}
}

func TestStatusQueryShowsSteps(t *testing.T) {
	env, _ := newEnv(t, fakes{})
	var during Status
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			err = v.Get(&during)
		}
		if err != nil {
			t.Errorf("query: %v", err)
		}
	}, time.Hour)
	execute(t, env, testOrder())
	var names []string
	for _, s := range during.Steps {
		if s.FinishedAt.IsZero() && s.Step != StepDelivery {
			t.Errorf("step %s not finished", s.Step)
		}
		names = append(names, s.Step)
	}
	want := []string{StepReserve, StepCharge, StepShip, StepNotify + ":order-shipped", StepDelivery}
	if !slices.Equal(names, want) {
		t.Errorf("steps %v, want %v", names, want)
	}
	if during.OrderID != "o-1" || during.ShipmentID != "sh-1" {
		t.Errorf("status %+v", during)
	}
}

func TestSettingsDefaults(t *testing.T) {
	for _, tc := range []struct {
		wf   *Workflow
		in   Input
		want settings
	}{
		{&Workflow{}, Input{}, settings{DefaultOutageBudget, DefaultDeliveryWait, true, 0, true, true}},
		{&Workflow{OutageBudget: time.Minute, DeliveryWait: time.Second}, Input{}, settings{time.Minute, time.Second, true, 0, true, true}},
		{&Workflow{OutageBudget: time.Minute}, Input{OutageBudget: time.Hour, DeliveryWait: 30 * time.Second}, settings{time.Hour, 30 * time.Second, true, 0, true, true}},
	} {
		if got := tc.wf.settings(tc.in); got != tc.want {
			t.Errorf("settings(%+v, %+v) = %+v, want %+v", tc.wf, tc.in, got, tc.want)
		}
	}
}

// TestGroupedEffects: to in_transit the saga runs four activities (three
// steps that announce their own statuses, one report of shipped + in_transit
// with the shipped notification) and one more for the delivery.
func TestGroupedEffects(t *testing.T) {
	env, r := newEnv(t, fakes{})
	execute(t, env, testOrder())
	if r.announces != 3 || r.reports != 2 {
		t.Errorf("steps that announced %d, reports %d; want 3 and 2", r.announces, r.reports)
	}
	if got := r.statuses(); !slices.Equal(got, happyStatuses) {
		t.Errorf("statuses\n got %v\nwant %v", got, happyStatuses)
	}
	checkSeq(t, r)
}

// TestUnannouncedStepPublishesPatientlyThenRuns: when Kafka refuses a step's
// statuses, nothing was called; the saga publishes them with the side-effect
// budget and then runs the step, so no status is skipped and the outage
// budget of the step is not spent on Kafka.
func TestUnannouncedStepPublishesPatientlyThenRuns(t *testing.T) {
	env, r := newEnv(t, fakes{unannounced: func(n int) bool { return n == 2 }}) // the charge's
	res := execute(t, env, testOrder())
	if res.Status != order.StatusDelivered {
		t.Fatalf("status %q, want delivered", res.Status)
	}
	if got := r.statuses(); !slices.Equal(got, happyStatuses) {
		t.Errorf("statuses\n got %v\nwant %v", got, happyStatuses)
	}
	if r.attempts[StepCharge] != 2 || r.reports != 3 {
		t.Errorf("charge calls %d, reports %d; want 2 (unannounced, then the step) and 3", r.attempts[StepCharge], r.reports)
	}
	checkSeq(t, r)
}

// TestWorkflowTaskTimeoutHoldsEveryRetry: a step's local-activity retry stays
// in the open workflow task only while its backoff is at most the task
// timeout; every backoff of the steps' policy must fit, or a long wait turns
// into a server timer and a new task per retry.
func TestWorkflowTaskTimeoutHoldsEveryRetry(t *testing.T) {
	if WorkflowTaskTimeout < retryMax {
		t.Errorf("WorkflowTaskTimeout %s < retryMax %s", WorkflowTaskTimeout, retryMax)
	}
	if got := StartOptions("o-1", "u-1").WorkflowTaskTimeout; got != WorkflowTaskTimeout {
		t.Errorf("StartOptions WorkflowTaskTimeout = %s, want %s", got, WorkflowTaskTimeout)
	}
	// Temporal caps a workflow task timeout at 120 s.
	if WorkflowTaskTimeout > 120*time.Second {
		t.Errorf("WorkflowTaskTimeout %s over Temporal's 120 s cap", WorkflowTaskTimeout)
	}
}
