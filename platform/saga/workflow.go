package saga

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/order"
)

// Retry shape of infrastructure failures: 1 s, x2, at most 30 s between
// attempts, for the outage budget. The ceiling spreads the sagas that wait
// out an outage over up to 30 s when it ends, instead of resuming all of
// them within 10 s: that burst is what otherwise starves order intake. Compensations back off up to 30 s so a
// long-stuck one grows its history slowly.
//
// One attempt may take 3 s (a service answers in tens of milliseconds): a
// hung dependency is noticed in 3 s, and when it comes back it releases only
// the attempts of its last 3 s at once, not every request of the outage; that
// burst is what otherwise starves the rest of the platform on recovery.
const (
	retryInitial         = time.Second
	retryMax             = 30 * time.Second
	attemptTimeout       = 3 * time.Second
	compensationMaxDelay = 30 * time.Second
	// inTaskWaitMax is the longest wait between a compensation's attempts
	// taken inside the worker, as part of the next attempt (InTaskWaits):
	// attempts at 0, 1, 3, 7 and 15 s, all that fit in the 30 s a
	// compensation has; later waits are durable timers.
	inTaskWaitMax = 8 * time.Second
	// sideEffectBudget bounds publishing a status or enqueuing a
	// notification: Kafka or Redis being down stalls the order, it never
	// skips a status.
	sideEffectBudget = 7 * 24 * time.Hour
)

// DefaultCancelReason is used when a cancel signal names no reason.
const DefaultCancelReason = "cancelled by customer"

// acts is only a name holder for local activities: the worker registers a
// real *Activities, and the SDK calls the registered one by method name.
var acts *Activities

// Workflow is the order saga. Its fields are the worker's defaults for the
// Input durations an orchestrator leaves zero.
type Workflow struct {
	OutageBudget time.Duration
	DeliveryWait time.Duration
}

// settings are resolved once per run and recorded in history (SideEffect), so
// a worker with other defaults replays the run exactly as it happened.
type settings struct {
	OutageBudget time.Duration `json:"outageBudget"`
	DeliveryWait time.Duration `json:"deliveryWait"`
	// Grouped: each step activity publishes its own status, and statuses
	// and notifications that follow each other go out in one activity
	// (5 markers to in_transit instead of 11). Runs recorded before it
	// existed decode false and replay the one-activity-per-effect shape.
	Grouped bool `json:"grouped,omitempty"`
	// CompensationDelay is FailCompensationDelay's wait (zero normally),
	// recorded here so a replay waits exactly as the run did.
	CompensationDelay time.Duration `json:"compensationDelay,omitempty"`
	// WholeBudget: a step that failed for unavailability before its
	// outage budget ended waits for the end and tries once more
	// (lastAttempt). Runs recorded before it existed decode false and
	// replay giving up where the retry policy did.
	WholeBudget bool `json:"wholeBudget,omitempty"`
	// InTaskWaits: a compensation's short waits between attempts (up to
	// inTaskWaitMax) are taken by the next attempt's local activity, inside
	// the worker, not by a durable timer. Right after an outage a timer's
	// workflow task queued behind everything else Temporal had to do: a
	// refund whose first try failed while Payments was still down ran again
	// 31 s later, for a 1 s timer. Runs recorded before it decode false and
	// replay their timers.
	InTaskWaits bool `json:"inTaskWaits,omitempty"`
}

func (w *Workflow) settings(in Input) settings {
	s := settings{OutageBudget: in.OutageBudget, DeliveryWait: in.DeliveryWait, Grouped: true, CompensationDelay: compensationDelay(), WholeBudget: true,
		InTaskWaits: true}
	if s.OutageBudget <= 0 && w != nil {
		s.OutageBudget = w.OutageBudget
	}
	if s.OutageBudget <= 0 {
		s.OutageBudget = DefaultOutageBudget
	}
	if s.DeliveryWait <= 0 && w != nil {
		s.DeliveryWait = w.DeliveryWait
	}
	if s.DeliveryWait <= 0 {
		s.DeliveryWait = DefaultDeliveryWait
	}
	return s
}

// Run is the workflow function, registered as WorkflowType.
func (w *Workflow) Run(ctx workflow.Context, in Input) (Result, error) {
	var set settings
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return w.settings(in) }).Get(&set); err != nil {
		return Result{}, fmt.Errorf("resolve settings: %w", err)
	}
	s := &run{in: in, set: set, st: Status{OrderID: in.Order.OrderID, Status: order.StatusPending}}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return s.st, nil }); err != nil {
		return Result{}, fmt.Errorf("status query: %w", err)
	}
	return s.execute(ctx)
}

// compensation is an undo registered before its step runs.
type compensation struct {
	name string
	act  any     // the activity method
	id   *string // the resource id, once the step answered
}

// failure is why the saga stopped going forward.
type failure struct {
	reason string // shown to people: "card_declined", "payments unavailable for 10m0s", ...
	code   string // bounded metric label
	cancel bool
}

type run struct {
	in    Input
	set   settings
	st    Status
	seq   int
	comps []compensation

	cancelReq  *CancelRequest
	shipped    bool // the shipment exists: cancel is refused from here on
	finishing  bool // compensating or finished
	cancelStep workflow.CancelFunc
	lastStep   *StepResult // metrics to send with the next status

	announce []StatusUpdate // statuses the next step activity publishes first (Grouped)
}

func (s *run) execute(ctx workflow.Context) (Result, error) {
	stepCtx, cancelStep := workflow.WithCancel(ctx)
	s.cancelStep = cancelStep
	s.takePendingCancel(ctx)
	workflow.Go(ctx, s.listenCancel)

	if !s.set.Grouped {
		s.publish(ctx, order.StatusProcessing, "", nil)
	} else {
		// Announced with the first step's own status.
		s.announce = append(s.announce, s.next(ctx, order.StatusProcessing, "", nil))
	}

	var res Reservation
	if f := s.step(stepCtx, StepReserve, order.StatusReservingInventory, ServiceInventory,
		compensation{name: CompRelease, act: acts.ReleaseReservation, id: &s.st.ReservationID}, acts.Reserve, &res); f != nil {
		return s.abort(ctx, *f)
	}
	s.st.ReservationID = res.ReservationID

	var ch Charge
	if f := s.step(stepCtx, StepCharge, order.StatusChargingPayment, ServicePayments,
		compensation{name: CompRefund, act: acts.RefundCharge, id: &s.st.ChargeID}, acts.Charge, &ch); f != nil {
		return s.abort(ctx, *f)
	}
	s.st.ChargeID = ch.ChargeID

	var sh Shipment
	if f := s.step(stepCtx, StepShip, order.StatusCreatingShipment, ServiceShipping,
		compensation{name: CompCancel, act: acts.CancelShipment, id: &s.st.ShipmentID}, acts.Ship, &sh); f != nil {
		return s.abort(ctx, *f)
	}
	s.st.ShipmentID, s.st.TrackingNumber = sh.ShipmentID, sh.TrackingNumber
	s.shipped = true
	shipped := map[string]string{"trackingNumber": sh.TrackingNumber, "shipmentId": sh.ShipmentID}

	if !s.set.Grouped {
		s.publish(ctx, order.StatusShipped, "", nil)
		s.notify(ctx, notification.TemplateOrderShipped, shipped)
		s.publish(ctx, order.StatusInTransit, "", nil)
	} else {
		s.report(ctx, notification.TemplateOrderShipped, shipped,
			s.next(ctx, order.StatusShipped, "", nil), s.next(ctx, order.StatusInTransit, "", nil))
	}
	s.awaitDelivery(ctx)

	s.finishing = true
	if !s.set.Grouped {
		s.notify(ctx, notification.TemplateDeliveryConfirmed, shipped)
		s.publishFinal(ctx, order.StatusDelivered, "", "", 0)
	} else {
		s.report(ctx, notification.TemplateDeliveryConfirmed, shipped, s.final(ctx, order.StatusDelivered, "", "", 0))
	}
	return s.st, nil
}

// listenCancel honours the first cancel signal until the shipment exists and
// records why any later one is refused.
func (s *run) listenCancel(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalCancel)
	for {
		var req CancelRequest
		ch.Receive(ctx, &req)
		s.onCancel(req)
	}
}

// takePendingCancel handles a cancel that arrived with the start (signal
// with start) before anything runs, so such an order runs no step at all.
func (s *run) takePendingCancel(ctx workflow.Context) {
	var req CancelRequest
	for workflow.GetSignalChannel(ctx, SignalCancel).ReceiveAsync(&req) {
		s.onCancel(req)
		req = CancelRequest{}
	}
}

func (s *run) onCancel(req CancelRequest) {
	if req.Reason == "" {
		req.Reason = DefaultCancelReason
	}
	switch {
	case s.cancelReq != nil:
		// Already cancelling.
	case s.finishing && (s.st.Status == order.StatusDelivered || s.st.Status == order.StatusFailed || s.st.Status == order.StatusCancelled):
		s.st.CancelRefused = "order is already " + s.st.Status
	case s.finishing:
		s.st.CancelRefused = "order is already being compensated: " + s.st.FailureReason
	case s.shipped:
		s.st.CancelRefused = "order has shipped (shipment " + s.st.ShipmentID + "); it can no longer be cancelled"
	default:
		s.cancelReq = &req
		s.cancelStep()
	}
}

func stepOptions(budget time.Duration) workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: budget,
		StartToCloseTimeout:    attemptTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    retryInitial,
			BackoffCoefficient: 2,
			MaximumInterval:    retryMax,
			// The budget (ScheduleToClose) ends the retries, not a count.
			MaximumAttempts:        math.MaxInt32,
			NonRetryableErrorTypes: []string{ErrTypeBusiness},
		},
	}
}

// retryBackoff is how long stepOptions' retry policy waits after attempt
// failed before the next one (the SDK's exponential backoff).
func retryBackoff(attempt int) time.Duration {
	d := retryInitial
	for i := 1; i < attempt && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// lastAttempt holds a step to its whole outage budget. Its retries back off
// exponentially, and the SDK gives a local activity up as soon as the next
// backoff would end past its ScheduleToClose: with a 10 s budget the last
// try is at 7 s, with the default 10 min at 9 min 31 s. A step promises to
// wait out an outage as long as its budget, so when it failed for
// unavailability before the budget's end it waits for that end (a cancel
// ends the wait) and tries once more.
func (s *run) lastAttempt(ctx workflow.Context, err error, fn any, in Input, out any) error {
	if err == nil || s.cancelReq != nil || temporal.IsCanceledError(err) {
		return err
	}
	if _, business := BusinessReason(err); business {
		return err
	}
	left := in.BudgetEnd.Sub(workflow.Now(ctx))
	if left <= 0 {
		return err
	}
	cancelled, werr := workflow.AwaitWithTimeout(ctx, left, func() bool { return s.cancelReq != nil })
	if cancelled || werr != nil {
		return err
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: attemptTimeout,
		StartToCloseTimeout:    attemptTimeout,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteLocalActivity(lctx, fn, in).Get(lctx, out)
}

func sideEffectOptions() workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: sideEffectBudget,
		StartToCloseTimeout:    attemptTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    retryInitial,
			BackoffCoefficient: 2,
			MaximumInterval:    retryMax,
		},
	}
}

// step runs one forward step, with its compensation registered first: a
// step whose answer was lost (timeout, cancel) is still undone by order id.
func (s *run) step(ctx workflow.Context, name, status, service string, comp compensation, fn, out any) *failure {
	if s.cancelReq != nil {
		return &failure{reason: s.cancelReq.Reason, code: "cancelled", cancel: true}
	}
	var announce []StatusUpdate
	if !s.set.Grouped {
		s.publish(ctx, status, "", nil)
		if s.cancelReq != nil { // arrived while publishing
			return &failure{reason: s.cancelReq.Reason, code: "cancelled", cancel: true}
		}
	} else {
		announce = append(s.announce, s.next(ctx, status, "", nil))
		s.announce = nil
	}
	s.comps = append(s.comps, comp)

	start := workflow.Now(ctx)
	s.st.Steps = append(s.st.Steps, StepTime{Step: name, StartedAt: start})
	idx := len(s.st.Steps) - 1

	lctx := workflow.WithLocalActivityOptions(ctx, stepOptions(s.set.OutageBudget))
	in := s.in
	in.BudgetEnd = start.Add(s.set.OutageBudget)
	in.Announce = announce
	err := workflow.ExecuteLocalActivity(lctx, fn, in).Get(lctx, out)
	switch {
	case err == nil || len(announce) == 0:
	case s.cancelReq != nil || temporal.IsCanceledError(err):
		// The activity may not have run: abort announces them again (same
		// event ids; consumers dedupe), so no seq is missing.
		s.announce = announce
	case IsUnannounced(err):
		// Kafka refused the statuses: publish them the patient way (a
		// broker outage stalls the order, it never spends the step's outage
		// budget), then call the service.
		s.report(ctx, "", nil, announce...)
		in.Announce = nil
		start = workflow.Now(ctx)
		s.st.Steps[idx].StartedAt = start
		in.BudgetEnd = start.Add(s.set.OutageBudget)
		err = workflow.ExecuteLocalActivity(lctx, fn, in).Get(lctx, out)
	}

	if s.set.WholeBudget {
		err = s.lastAttempt(ctx, err, fn, in, out)
	}

	end := workflow.Now(ctx)
	s.st.Steps[idx].FinishedAt = end
	res := &StepResult{Step: name, Outcome: "ok", Duration: end.Sub(start)}
	s.lastStep = res
	if err == nil && s.cancelReq == nil {
		return nil
	}
	var f *failure
	switch reason, business := BusinessReason(err); {
	case s.cancelReq != nil:
		// Cancelled while the step ran: whether or not it completed, its
		// compensation (registered above) undoes it.
		res.Outcome = "cancelled"
		f = &failure{reason: s.cancelReq.Reason, code: "cancelled", cancel: true}
	case business:
		// The service said no: nothing happened, nothing of this step to undo.
		res.Outcome = "business"
		s.comps = s.comps[:len(s.comps)-1]
		f = &failure{reason: reason, code: reason}
	case temporal.IsCanceledError(err):
		res.Outcome = "cancelled"
		f = &failure{reason: "workflow cancelled", code: "cancelled", cancel: true}
	default:
		res.Outcome = "unavailable"
		f = &failure{reason: fmt.Sprintf("%s unavailable for %s", service, s.set.OutageBudget), code: service + "_unavailable"}
	}
	if err != nil {
		s.st.Steps[idx].Error = errText(err)
	} else {
		s.st.Steps[idx].Error = "cancelled: " + f.reason
	}
	return f
}

// errText is the original error text of an activity failure, without the
// ActivityError wrapper and the failure chain Temporal appends.
func errText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var ae *temporal.ActivityError
	if errors.As(err, &ae) && ae.Unwrap() != nil {
		return ae.Unwrap().Error()
	}
	return err.Error()
}

// abort compensates every registered step in reverse order on a
// disconnected context (a cancelled workflow still undoes its work), each
// retried until it succeeds, then notifies and publishes the terminal status.
func (s *run) abort(ctx workflow.Context, f failure) (Result, error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if s.set.CompensationDelay > 0 {
		_ = workflow.Sleep(dctx, s.set.CompensationDelay) // FailCompensationDelay
	}
	s.finishing = true
	s.st.FailureReason = f.reason
	s.st.FailedAt = workflow.Now(dctx)
	if !s.set.Grouped {
		s.publish(dctx, order.StatusCompensating, f.reason, nil)
	} else {
		// Statuses of a step that never ran (cancelled before its turn) are
		// announced with this one, so no seq is skipped.
		s.report(dctx, "", nil, append(s.announce, s.next(dctx, order.StatusCompensating, f.reason, nil))...)
		s.announce = nil
	}
	for i := len(s.comps) - 1; i >= 0; i-- {
		s.compensate(dctx, s.comps[i])
	}
	s.st.CompensatedAt = workflow.Now(dctx)

	status, template := order.StatusFailed, notification.TemplateOrderFailed
	if f.cancel {
		status, template = order.StatusCancelled, notification.TemplateOrderCancelled
	}
	if !s.set.Grouped {
		s.notify(dctx, template, map[string]string{"reason": f.reason})
		s.publishFinal(dctx, status, f.reason, f.code, s.st.CompensatedAt.Sub(s.st.FailedAt))
	} else {
		s.report(dctx, template, map[string]string{"reason": f.reason},
			s.final(dctx, status, f.reason, f.code, s.st.CompensatedAt.Sub(s.st.FailedAt)))
	}
	return s.st, nil
}

// compensate runs one compensation until it succeeds: one attempt per local
// activity, so every attempt and its error are visible in the status query,
// and a wait between attempts, doubling: the short ones inside the next
// attempt (InTaskWaits), the rest durable timers.
func (s *run) compensate(ctx workflow.Context, c compensation) {
	started := workflow.Now(ctx)
	s.st.Compensations = append(s.st.Compensations, CompensationState{Name: c.name, StartedAt: started})
	idx := len(s.st.Compensations) - 1
	delay := retryInitial
	reportStuck := false
	var wait time.Duration // taken by this attempt before its call
	for attempt := 1; ; attempt++ {
		in := CompensationInput{OrderID: s.in.Order.OrderID, CorrelationID: s.in.CorrelationID, Attempt: attempt, NowStuck: reportStuck, Wait: wait}
		if c.id != nil {
			in.ResourceID = *c.id
		}
		reportStuck = false
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: wait + attemptTimeout,
			StartToCloseTimeout:    wait + attemptTimeout,
			RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		err := workflow.ExecuteLocalActivity(lctx, c.act, in).Get(lctx, nil)
		cs := &s.st.Compensations[idx]
		cs.Attempts = attempt
		if err == nil {
			cs.CompletedAt = workflow.Now(ctx)
			cs.Stuck = false
			return
		}
		cs.LastError = errText(err)
		if !cs.Stuck && workflow.Now(ctx).Sub(started) >= StuckAfter {
			cs.Stuck = true
			reportStuck = true
			workflow.GetLogger(ctx).Warn("compensation stuck", "order_id", s.in.Order.OrderID, "compensation", c.name, "attempts", attempt, "err", cs.LastError)
		}
		wait = 0
		if s.set.InTaskWaits && delay <= inTaskWaitMax {
			wait = delay
		} else {
			_ = workflow.Sleep(ctx, delay)
		}
		delay = min(delay*2, compensationMaxDelay)
	}
}

// awaitDelivery waits for the delivered signal or the delivery timer,
// whichever comes first.
func (s *run) awaitDelivery(ctx workflow.Context) {
	start := workflow.Now(ctx)
	s.st.Steps = append(s.st.Steps, StepTime{Step: StepDelivery, StartedAt: start})
	idx := len(s.st.Steps) - 1

	tctx, cancelTimer := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(tctx, s.set.DeliveryWait)
	outcome := "timer"
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(workflow.Future) {})
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalDelivered), func(c workflow.ReceiveChannel, _ bool) {
		var d DeliveredSignal
		c.Receive(ctx, &d)
		outcome = "signal"
	})
	sel.Select(ctx)
	cancelTimer()

	end := workflow.Now(ctx)
	s.st.Steps[idx].FinishedAt = end
	s.lastStep = &StepResult{Step: StepDelivery, Outcome: outcome, Duration: end.Sub(start)}
}

// next records a transition in the status and returns the update that
// emits it.
func (s *run) next(ctx workflow.Context, status, reason string, final *Final) StatusUpdate {
	s.seq++
	s.st.Status = status
	u := StatusUpdate{
		OrderID: s.in.Order.OrderID, UserID: s.in.Order.UserID, CorrelationID: s.in.CorrelationID,
		Status: status, Seq: s.seq, At: workflow.Now(ctx), Reason: reason, Step: s.lastStep, Final: final,
	}
	s.lastStep = nil
	return u
}

// final is next for the terminal status.
func (s *run) final(ctx workflow.Context, status, reason, code string, compensation time.Duration) StatusUpdate {
	return s.next(ctx, status, reason, &Final{
		Outcome: status, Reason: reason, ReasonCode: code,
		TotalCents: s.in.Order.TotalCents, Currency: s.in.Order.Currency, CompensationDuration: compensation,
	})
}

// report publishes updates and then, when template is set, enqueues that
// notification, in one activity retried for the side-effect budget: Kafka
// or Redis being down stalls the order, it never skips a status.
func (s *run) report(ctx workflow.Context, template string, data map[string]string, updates ...StatusUpdate) {
	r := Report{Statuses: updates}
	var idx int
	if template != "" {
		start := workflow.Now(ctx)
		s.st.Steps = append(s.st.Steps, StepTime{Step: StepNotify + ":" + template, StartedAt: start})
		idx = len(s.st.Steps) - 1
		r.Notify = &NotifyInput{
			OrderID: s.in.Order.OrderID, UserID: s.in.Order.UserID, CorrelationID: s.in.CorrelationID,
			Template: template, Data: data, RequestedAt: start,
		}
	}
	lctx := workflow.WithLocalActivityOptions(ctx, sideEffectOptions())
	err := workflow.ExecuteLocalActivity(lctx, acts.Report, r).Get(lctx, nil)
	if r.Notify != nil {
		s.st.Steps[idx].FinishedAt = workflow.Now(ctx)
		if err != nil {
			s.st.Steps[idx].Error = errText(err)
		}
	}
	if err != nil {
		workflow.GetLogger(ctx).Error("report not done", "order_id", s.in.Order.OrderID, "statuses", len(updates), "template", template, "err", err)
	}
}

// publish records a transition in the status and emits it in an activity of
// its own (runs recorded before Grouped).
func (s *run) publish(ctx workflow.Context, status, reason string, final *Final) {
	u := s.next(ctx, status, reason, final)
	lctx := workflow.WithLocalActivityOptions(ctx, sideEffectOptions())
	if err := workflow.ExecuteLocalActivity(lctx, acts.Publish, u).Get(lctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("status not published", "order_id", u.OrderID, "status", status, "seq", u.Seq, "err", err)
	}
}

func (s *run) publishFinal(ctx workflow.Context, status, reason, code string, compensation time.Duration) {
	s.publish(ctx, status, reason, &Final{
		Outcome: status, Reason: reason, ReasonCode: code,
		TotalCents: s.in.Order.TotalCents, Currency: s.in.Order.Currency, CompensationDuration: compensation,
	})
}

func (s *run) notify(ctx workflow.Context, template string, data map[string]string) {
	start := workflow.Now(ctx)
	s.st.Steps = append(s.st.Steps, StepTime{Step: StepNotify + ":" + template, StartedAt: start})
	idx := len(s.st.Steps) - 1
	in := NotifyInput{
		OrderID: s.in.Order.OrderID, UserID: s.in.Order.UserID, CorrelationID: s.in.CorrelationID,
		Template: template, Data: data, RequestedAt: start,
	}
	lctx := workflow.WithLocalActivityOptions(ctx, sideEffectOptions())
	err := workflow.ExecuteLocalActivity(lctx, acts.Notify, in).Get(lctx, nil)
	s.st.Steps[idx].FinishedAt = workflow.Now(ctx)
	if err != nil {
		s.st.Steps[idx].Error = errText(err)
		workflow.GetLogger(ctx).Error("notification not enqueued", "order_id", in.OrderID, "template", template, "err", err)
	}
}
