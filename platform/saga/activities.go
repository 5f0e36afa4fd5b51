package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/telemetry"
)

// Source names the saga in event envelopes and Kafka headers.
const Source = "order-saga"

// FailSkipRefund, armed in a worker's STAMPEDE_FAILPOINTS, breaks the
// platform on purpose: the refund compensation reports success without
// refunding. It exists to prove that stampede chaos fails such a platform.
const FailSkipRefund = "saga.skip-refund"

// Producer publishes records and waits for their acknowledgement (a
// *kgo.Client with an idempotent producer).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Enqueuer enqueues asynq tasks (an *asynq.Client).
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Activities holds everything the saga's side effects need. Every method is
// idempotent: the service calls carry an idempotency key per (order, step),
// status events have a deterministic id, notifications a task id.
type Activities struct {
	InventoryURL string // base URLs, e.g. http://127.0.0.1:8081
	PaymentsURL  string
	ShippingURL  string
	HTTP         *http.Client
	Producer     Producer
	Tasks        Enqueuer
	Metrics      *Metrics // nil: nothing recorded
	// Pacer bounds how fast this worker resumes failed forward steps
	// (compensations are never paced); nil: no bound.
	Pacer *Pacer
	Log   *slog.Logger
}

// CompensationInput is the input of one attempt of a compensation.
type CompensationInput struct {
	OrderID       string `json:"orderId"`
	CorrelationID string `json:"correlationId"`
	ResourceID    string `json:"resourceId,omitempty"` // reservation, charge or shipment id, when known
	Attempt       int    `json:"attempt"`
	NowStuck      bool   `json:"nowStuck,omitempty"` // this attempt is the first after StuckAfter
	// Wait is the backoff this attempt takes before its call, in the
	// worker (a short one; longer ones are the workflow's durable timers).
	Wait time.Duration `json:"waitNs,omitempty"`
}

// StatusUpdate is one status transition to publish, with the metrics that
// the transition closes (recorded here, never in workflow code).
type StatusUpdate struct {
	OrderID       string      `json:"orderId"`
	UserID        string      `json:"userId"`
	CorrelationID string      `json:"correlationId"`
	Status        string      `json:"status"`
	Seq           int         `json:"seq"`
	At            time.Time   `json:"at"`
	Reason        string      `json:"reason,omitempty"`
	Step          *StepResult `json:"step,omitempty"`  // the step that just ended
	Final         *Final      `json:"final,omitempty"` // set on the terminal status
}

// StepResult is how a step ended and how long it took in workflow time.
type StepResult struct {
	Step     string        `json:"step"`
	Outcome  string        `json:"outcome"` // ok, business, unavailable, cancelled
	Duration time.Duration `json:"duration"`
}

// Final is the outcome of a finished saga.
type Final struct {
	Outcome              string        `json:"outcome"` // delivered, failed, cancelled
	Reason               string        `json:"reason,omitempty"`
	ReasonCode           string        `json:"reasonCode,omitempty"` // bounded label value
	TotalCents           int64         `json:"totalCents"`
	Currency             string        `json:"currency"`
	CompensationDuration time.Duration `json:"compensationDuration,omitempty"`
}

// NotifyInput asks for one notification.
type NotifyInput struct {
	OrderID       string            `json:"orderId"`
	UserID        string            `json:"userId"`
	CorrelationID string            `json:"correlationId"`
	Template      string            `json:"template"`
	Data          map[string]string `json:"data,omitempty"`
	RequestedAt   time.Time         `json:"requestedAt"`
}

func (a *Activities) logger(ctx context.Context, orderID, cid string) (context.Context, *slog.Logger) {
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	return telemetry.WithCorrelationID(ctx, cid), log.With("order_id", orderID)
}

func (a *Activities) countRetry(ctx context.Context, step string) {
	if a.Metrics != nil && activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt > 1 {
		a.Metrics.StepRetries.WithLabelValues(step).Inc()
	}
}

// admit waits for a retry's turn with the Pacer (first attempts never wait)
// and counts what it turned away.
func (a *Activities) admit(ctx context.Context, name string, attempt int, budgetEnd time.Time) error {
	if name == StepReserve && attempt <= 1 {
		a.Pacer.Arrived() // a new saga: the load the saga budget leaves retries
	}
	err := a.Pacer.Admit(ctx, attempt, budgetEnd)
	if err != nil && IsPaced(err) && a.Metrics != nil {
		a.Metrics.Paced.WithLabelValues(name).Inc()
	}
	return err
}

func attemptOf(ctx context.Context) int {
	if activity.IsActivity(ctx) {
		return int(activity.GetInfo(ctx).Attempt)
	}
	return 1
}

func (a *Activities) logStep(ctx context.Context, log *slog.Logger, step string, err error, attrs ...any) {
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	attrs = append(attrs, "step", step, "attempt", attempt)
	switch _, business := BusinessReason(err); {
	case err == nil:
		log.InfoContext(ctx, "step done", attrs...)
	case business:
		log.InfoContext(ctx, "step refused", append(attrs, "err", err)...)
	default:
		log.WarnContext(ctx, "step failed; will retry", append(attrs, "err", err)...)
	}
}

// ErrTypeUnannounced is the ApplicationError type of a step activity that
// could not publish the statuses it was to announce before its call: nothing
// was called, and the workflow publishes them with the side-effect budget.
const ErrTypeUnannounced = "Unannounced"

// IsUnannounced reports whether err is a step's ErrTypeUnannounced.
func IsUnannounced(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == ErrTypeUnannounced
}

// announceTimeout bounds a step's publish, well inside its attempt timeout,
// so a slow broker ends the attempt as unannounced, never as a timeout that
// a retry (which does not announce) would hide.
const announceTimeout = time.Second

// announce publishes in.Announce on a step's first attempt.
func (a *Activities) announce(ctx context.Context, in Input) error {
	if len(in.Announce) == 0 || attemptOf(ctx) > 1 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	if err := a.publish(pctx, in.Announce...); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeUnannounced, err)
	}
	return nil
}

// Reserve holds stock for the order's items.
func (a *Activities) Reserve(ctx context.Context, in Input) (Reservation, error) {
	o := in.Order
	ctx, log := a.logger(ctx, o.OrderID, in.CorrelationID)
	if err := a.announce(ctx, in); err != nil {
		return Reservation{}, err
	}
	a.countRetry(ctx, StepReserve)
	if err := a.admit(ctx, StepReserve, attemptOf(ctx), in.BudgetEnd); err != nil {
		a.logStep(ctx, log, StepReserve, err)
		return Reservation{}, err
	}
	req := inventory.ReserveRequest{OrderID: o.OrderID}
	for _, it := range o.Items {
		req.Items = append(req.Items, inventory.Item{SKU: it.SKU, Qty: it.Qty})
	}
	var out Reservation
	err := a.call(ctx, ServiceInventory, http.MethodPost, a.InventoryURL+inventory.PathReservations,
		IdempotencyKey(o.OrderID, "reserve"), in.CorrelationID, req, &out,
		businessRule{
			http.StatusConflict:            {[]string{inventory.ErrCodeOutOfStock, inventory.ErrCodeOrderClosed}, inventory.ErrCodeOutOfStock},
			http.StatusUnprocessableEntity: {[]string{inventory.ErrCodeKeyReused}, inventory.ErrCodeKeyReused},
		})
	a.logStep(ctx, log, StepReserve, err, "reservation_id", out.ReservationID)
	return out, err
}

// Charge captures the order's total.
func (a *Activities) Charge(ctx context.Context, in Input) (Charge, error) {
	o := in.Order
	ctx, log := a.logger(ctx, o.OrderID, in.CorrelationID)
	if err := a.announce(ctx, in); err != nil {
		return Charge{}, err
	}
	a.countRetry(ctx, StepCharge)
	if err := a.admit(ctx, StepCharge, attemptOf(ctx), in.BudgetEnd); err != nil {
		a.logStep(ctx, log, StepCharge, err)
		return Charge{}, err
	}
	req := payment.ChargeRequest{OrderID: o.OrderID, AmountCents: chargeAmount(o), Currency: o.Currency,
		PaymentRef: o.Payment.Ref, Token: o.Payment.Token}
	var out Charge
	err := a.call(ctx, ServicePayments, http.MethodPost, a.PaymentsURL+payment.PathCharges,
		chargeKey(o.OrderID), in.CorrelationID, req, &out,
		businessRule{
			http.StatusPaymentRequired:     {nil, payment.ErrCodeCardDeclined},
			http.StatusConflict:            {[]string{payment.ErrCodeOrderClosed}, payment.ErrCodeOrderClosed},
			http.StatusUnprocessableEntity: {[]string{payment.ErrCodeKeyReused}, payment.ErrCodeKeyReused},
		})
	a.logStep(ctx, log, StepCharge, err, "charge_id", out.ChargeID)
	return out, err
}

// Ship books the shipment.
func (a *Activities) Ship(ctx context.Context, in Input) (Shipment, error) {
	o := in.Order
	ctx, log := a.logger(ctx, o.OrderID, in.CorrelationID)
	if err := a.announce(ctx, in); err != nil {
		return Shipment{}, err
	}
	a.countRetry(ctx, StepShip)
	if err := a.admit(ctx, StepShip, attemptOf(ctx), in.BudgetEnd); err != nil {
		a.logStep(ctx, log, StepShip, err)
		return Shipment{}, err
	}
	req := shipping.CreateRequest{OrderID: o.OrderID, Address: shipping.Address(o.ShippingAddress)}
	for _, it := range o.Items {
		req.Items = append(req.Items, shipping.Item{SKU: it.SKU, Qty: it.Qty, PriceCents: it.PriceCents})
	}
	var out Shipment
	err := a.call(ctx, ServiceShipping, http.MethodPost, a.ShippingURL+shipping.PathShipments,
		IdempotencyKey(o.OrderID, "ship"), in.CorrelationID, req, &out,
		businessRule{
			http.StatusUnprocessableEntity: {nil, shipping.ErrCodeUndeliverable},
			http.StatusConflict:            {[]string{shipping.ErrCodeOrderClosed}, shipping.ErrCodeOrderClosed},
		})
	a.logStep(ctx, log, StepShip, err, "shipment_id", out.ShipmentID, "tracking_number", out.TrackingNumber)
	return out, err
}

// ReleaseReservation gives back whatever stock the order holds.
func (a *Activities) ReleaseReservation(ctx context.Context, in CompensationInput) error {
	return a.compensate(ctx, in, CompRelease, ServiceInventory,
		byOrder(a.InventoryURL, inventory.PathReleaseByOrder, in.OrderID), IdempotencyKey(in.OrderID, "release"))
}

// RefundCharge refunds every captured charge of the order in full.
func (a *Activities) RefundCharge(ctx context.Context, in CompensationInput) error {
	if failpoint.Armed(FailSkipRefund) {
		// Sabotage on purpose: claim the refund without making it, so a
		// chaos run can prove its audit catches a charged-and-failed order.
		ctx, log := a.logger(ctx, in.OrderID, in.CorrelationID)
		log.WarnContext(ctx, "failpoint "+FailSkipRefund+": refund skipped on purpose", "compensation", CompRefund)
		return nil
	}
	return a.compensate(ctx, in, CompRefund, ServicePayments,
		byOrder(a.PaymentsURL, payment.PathRefundByOrder, in.OrderID), IdempotencyKey(in.OrderID, "refund"))
}

// CancelShipment cancels every live shipment of the order.
func (a *Activities) CancelShipment(ctx context.Context, in CompensationInput) error {
	return a.compensate(ctx, in, CompCancel, ServiceShipping,
		byOrder(a.ShippingURL, shipping.PathCancelByOrder, in.OrderID), IdempotencyKey(in.OrderID, "cancel-shipment"))
}

func (a *Activities) compensate(ctx context.Context, in CompensationInput, name, service, u, key string) error {
	ctx, log := a.logger(ctx, in.OrderID, in.CorrelationID)
	if in.Wait > 0 {
		t := time.NewTimer(in.Wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if in.NowStuck && a.Metrics != nil {
		a.Metrics.Stuck.Inc()
	}
	// Compensations are never paced: each must finish within 30 s of its
	// failure, and a refund backlog after an outage past the budget is
	// hundreds of them (a paced one took 2 minutes in the full chaos profile).
	// No business answer ends a compensation: every failure is retried.
	err := a.call(ctx, service, http.MethodPost, u, key, in.CorrelationID, struct {
		OrderID string `json:"orderId"`
		ID      string `json:"id,omitempty"`
	}{in.OrderID, in.ResourceID}, nil, nil)
	if err != nil && failpoint.Armed(FailCompensationGiveUp) {
		log.WarnContext(ctx, "failpoint "+FailCompensationGiveUp+": compensation given up after one error", "compensation", name, "err", err)
		err = nil
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		log.WarnContext(ctx, "compensation failed; will retry", "compensation", name, "attempt", in.Attempt, "stuck", in.NowStuck, "err", err)
		// A 400 is not a reason to give up on an undo: make it retryable.
		if _, business := BusinessReason(err); business {
			err = errors.New(err.Error())
		}
	} else {
		log.InfoContext(ctx, "compensation done", "compensation", name, "attempt", in.Attempt)
	}
	if a.Metrics != nil {
		a.Metrics.Compensations.WithLabelValues(name, outcome).Inc()
	}
	return err
}

// statusEventID is the envelope id of one transition: a retried publish
// carries the same id, so consumers dedupe it.
func statusEventID(orderID string, seq int) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "stampede:order-status:%s:%d", orderID, seq)).String()
}

// Publish emits the status event (topic order-status, keyed by user) and, on the
// terminal status, the analytics outcome; it records the metrics the
// transition closes. (The activity of runs recorded before Report.)
func (a *Activities) Publish(ctx context.Context, u StatusUpdate) error {
	return a.publish(ctx, u)
}

// Report is what the saga tells the world at one point: statuses to publish
// and then, optionally, a notification to enqueue.
type Report struct {
	Statuses []StatusUpdate `json:"statuses,omitempty"`
	Notify   *NotifyInput   `json:"notify,omitempty"`
}

// Report publishes the statuses, in one produce, then enqueues the
// notification. A retry does both again: both are idempotent.
func (a *Activities) Report(ctx context.Context, r Report) error {
	if err := a.publish(ctx, r.Statuses...); err != nil {
		return err
	}
	if r.Notify != nil {
		return a.Notify(ctx, *r.Notify)
	}
	return nil
}

// publish emits the status events of us in order (topic order-status, keyed
// by user) and, for a terminal status, the analytics outcome, in one produce;
// it records the metrics each transition closes (on a first attempt).
func (a *Activities) publish(ctx context.Context, us ...StatusUpdate) error {
	if len(us) == 0 {
		return nil
	}
	ctx, log := a.logger(ctx, us[0].OrderID, us[0].CorrelationID)
	first := !activity.IsActivity(ctx) || activity.GetInfo(ctx).Attempt == 1
	var recs []*kgo.Record
	for _, u := range us {
		if first && a.Metrics != nil {
			a.Metrics.observe(u)
		}
		env, err := event.New(event.OrderStatusChanged{
			OrderID: u.OrderID, UserID: u.UserID, Status: u.Status, Seq: u.Seq, At: u.At, Reason: u.Reason,
		}, Source, u.CorrelationID, u.At)
		if err != nil {
			return fmt.Errorf("status event: %w", err)
		}
		env.ID = statusEventID(u.OrderID, u.Seq)
		recs = append(recs, record(event.TopicOrderStatus, u.UserID, env))
		if u.Final != nil {
			out, err := event.New(event.AnalyticsOutcome{
				OrderID: u.OrderID, UserID: u.UserID, Status: u.Final.Outcome, Reason: u.Final.Reason,
				TotalCents: u.Final.TotalCents, Currency: u.Final.Currency,
			}, Source, u.CorrelationID, u.At)
			if err != nil {
				return fmt.Errorf("analytics event: %w", err)
			}
			out.ID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("stampede:order-outcome:"+u.OrderID)).String()
			recs = append(recs, record(event.TopicAnalytics, u.UserID, out))
		}
	}
	if a.Producer == nil {
		return errors.New("publish: no Kafka producer configured")
	}
	for _, r := range recs {
		r.Context = ctx
	}
	last := us[len(us)-1]
	if err := a.Producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		log.WarnContext(ctx, "publish status failed; will retry", "status", last.Status, "seq", last.Seq, "statuses", len(us), "err", err)
		return fmt.Errorf("publish %s seq %d: %w", last.Status, last.Seq, err)
	}
	for _, u := range us {
		log.InfoContext(ctx, "status published", "status", u.Status, "seq", u.Seq, "reason", u.Reason)
	}
	return nil
}

func record(topic, key string, env event.Envelope) *kgo.Record {
	b, _ := json.Marshal(env)
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Headers: kafka.EventHeaders(env)}
}

// Notify enqueues a notification task; a task already enqueued (same
// order and template) is success, so a retried notify never sends twice.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) error {
	ctx, log := a.logger(ctx, in.OrderID, in.CorrelationID)
	task, err := notification.NewTask(notification.Payload{
		OrderID: in.OrderID, UserID: in.UserID, Template: in.Template,
		CorrelationID: in.CorrelationID, Data: in.Data, RequestedAt: in.RequestedAt,
	})
	if err != nil {
		return fmt.Errorf("notify %s: %w", in.Template, err)
	}
	if a.Tasks == nil {
		return errors.New("notify: no task queue configured")
	}
	_, err = a.Tasks.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		log.InfoContext(ctx, "notification already enqueued", "template", in.Template)
		return nil
	case err != nil:
		log.WarnContext(ctx, "enqueue notification failed; will retry", "template", in.Template, "err", err)
		return fmt.Errorf("notify %s: %w", in.Template, err)
	}
	log.InfoContext(ctx, "notification enqueued", "template", in.Template)
	return nil
}
