// Package verify audits a load or chaos run order by order, from ground
// truth: the k6 ledger of every placement attempt (what the client asked
// for), every service's own store (orders, reservations, charges and
// refunds, shipments, what the notification sandbox received), Temporal's
// history of each saga (its steps' attempts and times) and the harness's own
// record of the faults it injected. It classifies each order and evaluates
// the gates that decide the run's verdict.
//
// It must never take the platform's word for anything: not its counters,
// not a saga's account of itself (its status query, its failure reason), not
// the totals its API answered. Those are compared with the ground truth,
// never used in its place.
package verify

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/order"
)

// Expected outcomes, as the load generator tags each order.
const (
	ExpectComplete      = "complete"
	ExpectDeclined      = "declined"
	ExpectOutOfStock    = "out_of_stock"
	ExpectUndeliverable = "undeliverable"
)

// Ledger outcomes of a placement attempt.
const (
	OutcomeAcked    = "acked"
	OutcomeRejected = "rejected"
	OutcomeUnknown  = "unknown"
)

// Platforms the audit knows how to read.
const (
	// PlatformSaga is Stampede: outbox, Kafka, a Temporal saga per order.
	PlatformSaga = "saga"
	// PlatformRest is the REST-chain baseline (package restchain): no
	// workflow, so every verdict comes from the stores alone.
	PlatformRest = "rest"
)

// LedgerLine is one placement attempt recorded by xk6-orders, the part of
// it the classifier reads. This package owns the ledger's reading side; the
// k6 extension, a module of its own that cannot import this one, writes the
// documented format (xk6-orders/README.md), and TestReadLedgerGolden reads
// a file that extension's tests pin byte for byte.
type LedgerLine struct {
	OrderID        string    `json:"orderId"`
	IdempotencyKey string    `json:"idempotencyKey"`
	UserID         string    `json:"userId"`
	Expect         string    `json:"expect"`
	Code           int       `json:"code"`
	AcceptedAt     time.Time `json:"acceptedAt"`
	Outcome        string    `json:"outcome"`
	// TotalCents and Items are what the client sent (never the API's answer).
	TotalCents int64        `json:"totalCents"`
	Items      []LedgerItem `json:"items"`
}

// LedgerItem is one line of an order as the client sent it.
type LedgerItem struct {
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"priceCents"`
}

// quantities sums the lines by SKU.
func (l LedgerLine) quantities() map[string]int {
	out := map[string]int{}
	for _, it := range l.Items {
		out[it.SKU] += it.Qty
	}
	return out
}

// Order is the Orders service's row of an order (the projection).
type Order struct {
	ID            string
	UserID        string
	Status        string
	FailureReason string
	TotalCents    int64
	CreatedAt     time.Time
}

// View is the order as GET /v1/orders/{id} shows it to the customer.
type View struct {
	Status        string
	FailureReason string
}

// Workflow is one run of an order's saga in Temporal (visibility).
type Workflow struct {
	RunID  string
	Status string // Running, Completed, Failed, Terminated, ...
}

// History is what Temporal recorded of the latest run: each step's final
// attempt count and times, the signals it received, how it closed. It is
// Temporal's record, not the saga's answer about itself.
type History struct {
	Start   time.Time
	Steps   []StepRun
	Signals []string
	Closed  string // the close event's status ("" while running)
}

// StepRun is one local activity of the saga as its history marker records
// it: the activity, from when it was due (the previous step's end) to its
// result, after how many attempts, and whether it failed.
type StepRun struct {
	Activity string // Reserve, Charge, Ship, ReleaseReservation, RefundCharge, CancelShipment, Report, ...
	Start    time.Time
	End      time.Time
	Attempts int
	Failed   bool
	Business bool   // the service refused (out of stock, declined, undeliverable)
	Message  string // the failure's message
}

// The saga's forward step activities and the service each calls.
var stepService = map[string]string{"Reserve": "inventory", "Charge": "payments", "Ship": "shipping"}

// failedStep is the forward step the saga stopped at, if any.
func (h *History) failedStep() *StepRun {
	if h == nil {
		return nil
	}
	// The saga stops at its first failed forward step: the last forward
	// step in the history is the one it failed at, if it failed.
	for i := len(h.Steps) - 1; i >= 0; i-- {
		s := &h.Steps[i]
		if _, fwd := stepService[s.Activity]; fwd {
			if s.Failed {
				return s
			}
			return nil
		}
	}
	return nil
}

// Reservation is an Inventory reservation.
type Reservation struct {
	ID         string
	Released   bool
	Items      map[string]int // sku -> qty
	CreatedAt  time.Time
	ReleasedAt time.Time
}

// Charge is a Payments charge and its refunds.
type Charge struct {
	ID            string
	Captured      bool // money moved (captured, refunded later or not)
	Declined      bool
	AmountCents   int64
	RefundedCents int64
	Refunds       int
	CreatedAt     time.Time
	LastRefundAt  time.Time
}

// Shipment is a Shipping shipment.
type Shipment struct {
	ID          string
	Cancelled   bool
	Delivered   bool
	CancelledAt time.Time
}

// Delivery is the Notifications service's record of one (template,
// channel): its outcome there. What the user got is Received.
type Delivery struct {
	Template string
	Channel  string
	Outcome  string // delivered, failed, skipped, pending, sending
}

// Contact is which channels the order's user can be reached on.
type Contact struct {
	Email, Push, SMS bool
}

// Has reports whether the contact has an address on channel.
func (c *Contact) Has(ch string) bool {
	if c == nil {
		return false
	}
	switch notification.Channel(ch) {
	case notification.Email:
		return c.Email
	case notification.Push:
		return c.Push
	case notification.SMS:
		return c.SMS
	}
	return false
}

// Facts are everything the stores, Temporal and the Orders API say about
// one order.
type Facts struct {
	Order        *Order // nil: the Orders service has no such order
	View         *View  // nil: not read
	Workflows    []Workflow
	History      *History // of the latest run; nil: not read
	Reservations []Reservation
	Charges      []Charge
	Shipments    []Shipment
	Deliveries   []Delivery
	// Received counts the distinct messages the channel sandbox accepted,
	// by template and channel: what the user actually got.
	Received map[string]map[string]int
	Contact  *Contact // nil: the user has no contact at all
}

func (f Facts) anyEffect() bool {
	return len(f.Reservations) > 0 || len(f.Charges) > 0 || len(f.Shipments) > 0
}

// Classes of an audited order.
const (
	ClassOK           = "ok"
	ClassCompensated  = "compensated"
	ClassLost         = "lost"
	ClassDuplicated   = "duplicated"
	ClassInconsistent = "inconsistent"
	ClassUnacked      = "unacked"  // in the platform though the client saw a timeout: allowed
	ClassRejected     = "rejected" // refused by the API and absent from the platform
	ClassPending      = "pending"  // successful so far and waiting for delivery (not terminal, not a failure)
)

// Verdict is the classification of one order, with the reasons behind it.
type Verdict struct {
	OrderID string   `json:"orderId"`
	Expect  string   `json:"expect"`
	Class   string   `json:"class"`
	Status  string   `json:"status,omitempty"` // the Orders view's status
	Reasons []string `json:"reasons,omitempty"`
	// CompensationTime is the failure (the step's end in Temporal's
	// history) -> the last undo row in the services' stores, for orders
	// that had something to undo; Compensated says it was measured.
	CompensationTime time.Duration `json:"compensationTimeNs,omitempty"`
	Compensated      bool          `json:"compensated,omitempty"`
	// Unmeasured says why a compensation could not be timed.
	Unmeasured string `json:"unmeasured,omitempty"`
	// Holds says the stores show the order succeeded: the stock gate counts
	// its items (from the ledger) as held.
	Holds bool `json:"holds,omitempty"`
}

// Env is what the audit knows of the run besides the order's facts.
type Env struct {
	Platform string // PlatformSaga (default) or PlatformRest
	// OutageBudget is how long the workers were told to retry an
	// unavailable service before failing an order (the harness set it).
	OutageBudget time.Duration
	// Faults are the harness's own record of what it broke.
	Faults []Window
}

// budgetSlack is how much of the outage budget a legitimately failed order
// may not have spent waiting (scheduling of its first attempt, clocks).
const budgetSlack = time.Second

// Preshipment reports whether an order in status s has not yet decided its
// fate: the verifier waits until no saga is in such a state.
func Preshipment(s string) bool {
	switch s {
	case order.StatusPending, order.StatusProcessing, order.StatusReservingInventory,
		order.StatusChargingPayment, order.StatusCreatingShipment, order.StatusCompensating:
		return true
	}
	return false
}

func succeededStatus(s string) bool {
	return s == order.StatusShipped || s == order.StatusInTransit || s == order.StatusDelivered
}

// Classify audits one order: line is its ledger entry (Outcome acked,
// rejected or unknown), f what the stores, Temporal and the Orders API say,
// env what the harness did.
func Classify(line LedgerLine, f Facts, env Env) Verdict {
	v := Verdict{OrderID: line.OrderID, Expect: line.Expect}
	if f.Order != nil {
		v.Status = f.Order.Status
	}
	exists := f.Order != nil || len(f.Workflows) > 0 || f.anyEffect()
	switch line.Outcome {
	case OutcomeRejected:
		if exists {
			return v.is(ClassInconsistent, "the API rejected the order but it exists in the platform")
		}
		v.Class = ClassRejected
		return v
	case OutcomeUnknown:
		if !exists {
			return v.is(ClassRejected, "client saw a timeout; the platform has no such order")
		}
	}

	// From here the order exists (or was acked and must exist).
	if f.Order == nil {
		return v.is(ClassLost, "acknowledged by the API but unknown to the Orders service"+effectsNote(f))
	}
	saga := env.Platform != PlatformRest
	if saga && len(f.Workflows) == 0 {
		return v.is(ClassLost, "no workflow order-"+line.OrderID+" in Temporal"+effectsNote(f))
	}
	if dup := duplicates(f); len(dup) > 0 {
		v.Class, v.Reasons = ClassDuplicated, dup
		v.Holds = readEffects(f).succeeded // a shipped order holds its stock, duplicated or not
		return v
	}

	e := readEffects(f)
	running := saga && f.Workflows[0].Status == "Running" && (f.History == nil || f.History.Closed == "")
	if running && Preshipment(f.Order.Status) && !e.succeeded {
		// Still on its way: the settle timed out on it.
		return v.is(ClassLost, "no terminal state: saga still in "+f.Order.Status+effectsNote(f))
	}
	switch {
	case len(e.half) > 0:
		v.Class = ClassInconsistent
		v.Reasons = append([]string{"half done (" + f.Order.Status + "):"}, e.half...)
		return v
	case e.succeeded:
		return classifySucceeded(v, line, f, e, saga)
	case !saga && Preshipment(f.Order.Status) && !f.anyEffect():
		return v.is(ClassLost, "accepted, and nothing reserved, charged or shipped, and nothing will: the order stays "+f.Order.Status)
	default:
		return classifyFailed(v, line, f, env, saga)
	}
}

func (v Verdict) is(class, reason string) Verdict {
	v.Class = class
	v.Reasons = append(v.Reasons, reason)
	return v
}

// effectsNote says what the stores hold of an order the platform lost track of.
func effectsNote(f Facts) string {
	e := readEffects(f)
	if !f.anyEffect() {
		return "; nothing reserved, charged or shipped"
	}
	if len(e.half) > 0 {
		return "; in the stores: " + strings.Join(e.half, ", ")
	}
	return ""
}

// duplicates are the effects an order must have at most once.
func duplicates(f Facts) []string {
	var dup []string
	if len(f.Workflows) > 1 {
		dup = append(dup, fmt.Sprintf("%d workflow runs", len(f.Workflows)))
	}
	captured := 0
	for _, c := range f.Charges {
		if c.Captured {
			captured++
		}
	}
	if captured > 1 {
		dup = append(dup, fmt.Sprintf("%d captured charges", captured))
	}
	if len(f.Shipments) > 1 {
		dup = append(dup, fmt.Sprintf("%d shipments", len(f.Shipments)))
	}
	if len(f.Reservations) > 1 {
		dup = append(dup, fmt.Sprintf("%d reservations", len(f.Reservations)))
	}
	for _, tpl := range sortedKeys(f.Received) {
		for _, ch := range sortedKeys(f.Received[tpl]) {
			if n := f.Received[tpl][ch]; n > 1 {
				dup = append(dup, fmt.Sprintf("%s on %s received %d times", tpl, ch, n))
			}
		}
	}
	return dup
}

// effects is what the services' stores hold of one order.
type effects struct {
	succeeded bool     // reserved, charged once in full, shipped: nothing undone
	half      []string // held, charged or shipped where the rest is undone or missing
	held      *Reservation
	charge    *Charge // the captured charge, not refunded
	lastUndo  time.Time
	undone    bool // something was done and all of it undone
}

func readEffects(f Facts) effects {
	var e effects
	var heldN, liveN int
	var ship *Shipment
	for i, r := range f.Reservations {
		if r.Released {
			e.undone = true
			e.lastUndo = later(e.lastUndo, r.ReleasedAt)
			continue
		}
		heldN++
		e.held = &f.Reservations[i]
	}
	var owed []string
	for i, c := range f.Charges {
		if !c.Captured {
			continue
		}
		switch {
		case c.Refunds == 0:
			e.charge = &f.Charges[i]
		case c.RefundedCents > c.AmountCents:
			owed = append(owed, fmt.Sprintf("charge %s over-refunded: %d cents refunded of %d", c.ID, c.RefundedCents, c.AmountCents))
		case c.RefundedCents == c.AmountCents:
			e.undone = true
		default:
			owed = append(owed, fmt.Sprintf("charge %s refunded only %d of %d cents", c.ID, c.RefundedCents, c.AmountCents))
		}
		if c.Refunds > 0 {
			e.lastUndo = later(e.lastUndo, c.LastRefundAt)
		}
	}
	for i, s := range f.Shipments {
		if s.Cancelled {
			e.undone = true
			e.lastUndo = later(e.lastUndo, s.CancelledAt)
			continue
		}
		liveN++
		ship = &f.Shipments[i]
	}
	if heldN == 1 && e.charge != nil && liveN == 1 && len(owed) == 0 && !e.undone {
		e.succeeded = true
		return e
	}
	e.half = append(e.half, owed...)
	if heldN > 0 || e.charge != nil || liveN > 0 {
		if e.held != nil {
			e.half = append(e.half, "stock held by reservation "+e.held.ID)
		}
		if e.charge != nil {
			e.half = append(e.half, fmt.Sprintf("charge %s captured (%d cents), not refunded", e.charge.ID, e.charge.AmountCents))
		}
		if ship != nil {
			e.half = append(e.half, "shipment "+ship.ID+" live")
		}
		missing := []string{}
		if heldN == 0 {
			missing = append(missing, "no stock held")
		}
		if e.charge == nil {
			missing = append(missing, "no charge captured")
		}
		if liveN == 0 {
			missing = append(missing, "no live shipment")
		}
		e.half = append(e.half, strings.Join(missing, ", "))
	}
	return e
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func classifySucceeded(v Verdict, line LedgerLine, f Facts, e effects, saga bool) Verdict {
	v.Holds = true
	var bad []string
	if line.Expect != ExpectComplete && line.Expect != "" {
		bad = append(bad, fmt.Sprintf("expected %s but the order succeeded", line.Expect))
	}
	if line.TotalCents > 0 && e.charge.AmountCents != line.TotalCents {
		bad = append(bad, fmt.Sprintf("charged %d cents, the client ordered %d", e.charge.AmountCents, line.TotalCents))
	}
	if want := line.quantities(); len(want) > 0 && !sameQty(e.held.Items, want) {
		bad = append(bad, fmt.Sprintf("reserved %s, the client ordered %s", qtyString(e.held.Items), qtyString(want)))
	}
	bad = append(bad, viewDisagrees(f, "succeeded (reserved, charged, shipped)", succeededStatus)...)
	templates := []string{notification.TemplateOrderShipped}
	for _, s := range f.Shipments {
		if s.Delivered {
			templates = append(templates, notification.TemplateDeliveryConfirmed)
		}
	}
	if saga {
		bad = append(bad, unnotified(f, templates...)...)
	}
	if len(bad) > 0 {
		v.Class, v.Reasons = ClassInconsistent, bad
		return v
	}
	v.Class = ClassOK
	if line.Outcome == OutcomeUnknown {
		v.Class = ClassUnacked
	}
	return v
}

func classifyFailed(v Verdict, line LedgerLine, f Facts, env Env, saga bool) Verdict {
	var bad []string
	status := f.Order.Status
	if f.View != nil {
		status = f.View.Status
	}
	cancelled := status == order.StatusCancelled
	if cancelled {
		// The ledger records no cancellation: the client never asked.
		bad = append(bad, "cancelled, though the client never cancelled it")
	}
	step := f.History.failedStep()
	switch line.Expect {
	case ExpectComplete, "":
		if ok, why := unavailableFailure(f, env); !ok {
			bad = append(bad, "expected to complete but failed: "+why)
		}
	default:
		if want := expectedStep[line.Expect]; step != nil && (step.Activity != want || !step.Business) && !outageBefore(f, env, step, want) {
			bad = append(bad, fmt.Sprintf("expected %s, but the saga failed at %s (%s)", line.Expect, step.Activity, step.Message))
		}
	}
	bad = append(bad, viewDisagrees(f, "undone (failed)", func(s string) bool {
		return s == order.StatusFailed || s == order.StatusCancelled
	})...)
	tpl := notification.TemplateOrderFailed
	if cancelled {
		tpl = notification.TemplateOrderCancelled
	}
	if saga {
		// The REST-chain baseline has no notification path: it is judged
		// on its effects alone.
		bad = append(bad, unnotified(f, tpl)...)
	}
	e := readEffects(f)
	switch {
	case !e.undone:
	case step == nil:
		v.Unmeasured = "no failed step in its history"
	case e.lastUndo.IsZero():
		v.Unmeasured = "no undo time in the stores"
	case e.lastUndo.Before(step.End):
		// The history records the failure after the stores undid it: the
		// workflow task that ran the step and its compensation was lost (a
		// killed worker, a restarted Temporal, a worker starved past the
		// task's timeout) and replayed later, and the replay records the
		// markers, this step's and the ones before, at its own time. The
		// failure came after the step began and after the workflow started
		// (the server's event, never replayed), so the undo's distance from
		// the later of the two that precedes it bounds the time from above.
		switch {
		case !step.Start.IsZero() && !e.lastUndo.Before(step.Start):
			v.Compensated, v.CompensationTime = true, e.lastUndo.Sub(step.Start)
		case f.History != nil && !f.History.Start.IsZero() && !e.lastUndo.Before(f.History.Start):
			v.Compensated, v.CompensationTime = true, e.lastUndo.Sub(f.History.Start)
		default:
			v.Unmeasured = fmt.Sprintf("the stores undid it %s before the failure its history records, and before its workflow started", step.End.Sub(e.lastUndo).Round(time.Millisecond))
		}
	default:
		v.Compensated = true
		v.CompensationTime = e.lastUndo.Sub(step.End)
	}
	if len(bad) > 0 {
		v.Class, v.Reasons = ClassInconsistent, bad
		return v
	}
	v.Class = ClassCompensated
	return v
}

// expectedStep is where each expected failure must stop the saga.
var expectedStep = map[string]string{ExpectDeclined: "Charge", ExpectOutOfStock: "Reserve", ExpectUndeliverable: "Ship"}

// sagaSteps are the forward steps in the order the saga runs them.
var sagaSteps = []string{"Reserve", "Charge", "Ship"}

// outageBefore decides whether an order due to fail at step want (a
// declined card at Charge, an undeliverable address at Ship) may have
// failed at step instead: only for unavailability the harness caused and
// the saga waited out for its whole budget (unavailableFailure, as for an
// order due to complete), at want or before it. A saga that never reached
// the service that would have refused the order cannot know it; one that
// failed past want was not refused where it had to be.
func outageBefore(f Facts, env Env, step *StepRun, want string) bool {
	if ok, _ := unavailableFailure(f, env); !ok {
		return false
	}
	return slices.Index(sagaSteps, step.Activity) <= slices.Index(sagaSteps, want)
}

// unavailableFailure decides whether an order that was to complete may have
// failed anyway: only when Temporal's history shows a step that failed
// after retrying for the whole outage budget, and the harness's own fault
// record shows its service unreachable for that long while it waited.
func unavailableFailure(f Facts, env Env) (bool, string) {
	reason := ""
	if f.View != nil && f.View.FailureReason != "" {
		reason = " (it says: " + f.View.FailureReason + ")"
	} else if f.Order.FailureReason != "" {
		reason = " (it says: " + f.Order.FailureReason + ")"
	}
	if f.History == nil {
		return false, "no saga history to show why" + reason
	}
	s := f.History.failedStep()
	if s == nil {
		return false, "its history has no failed step" + reason
	}
	if s.Business {
		return false, fmt.Sprintf("%s refused it: %s", s.Activity, s.Message)
	}
	service := stepService[s.Activity]
	waited := s.End.Sub(s.Start)
	if env.OutageBudget <= 0 || waited < env.OutageBudget-budgetSlack || s.Attempts < 2 {
		return false, fmt.Sprintf("%s gave up on %s after %s and %d attempts, the outage budget is %s%s",
			s.Activity, service, waited.Round(100*time.Millisecond), s.Attempts, env.OutageBudget, reason)
	}
	down := Unreachable(env.Faults, service, s.Start, s.End)
	if down < env.OutageBudget-budgetSlack {
		return false, fmt.Sprintf("%s was unreachable for %s of the %s it waited (the harness's fault record), less than the outage budget %s",
			service, down.Round(100*time.Millisecond), waited.Round(100*time.Millisecond), env.OutageBudget)
	}
	return true, ""
}

// viewDisagrees checks the Orders view (the projection's row and GET
// /v1/orders/{id}) against what the stores say happened.
func viewDisagrees(f Facts, truth string, agrees func(string) bool) []string {
	var bad []string
	if !agrees(f.Order.Status) {
		bad = append(bad, fmt.Sprintf("the Orders projection shows %s; the stores say %s", f.Order.Status, truth))
	}
	if f.View != nil && !agrees(f.View.Status) && f.View.Status != f.Order.Status {
		bad = append(bad, fmt.Sprintf("GET /v1/orders/{id} shows %s; the stores say %s", f.View.Status, truth))
	}
	return bad
}

// unnotified checks that the user received each template on every channel
// it has an address on (a dead or skipped send is not a notification).
func unnotified(f Facts, templates ...string) []string {
	var bad []string
	for _, tpl := range templates {
		var missing []string
		for _, ch := range notification.Channels {
			if f.Contact.Has(string(ch)) && f.Received[tpl][string(ch)] == 0 {
				missing = append(missing, string(ch)+outcomeOf(f, tpl, string(ch)))
			}
		}
		if len(missing) > 0 {
			bad = append(bad, fmt.Sprintf("%s never received on %s", tpl, strings.Join(missing, ", ")))
		}
	}
	return bad
}

func outcomeOf(f Facts, tpl, ch string) string {
	for _, d := range f.Deliveries {
		if d.Template == tpl && d.Channel == ch {
			return " (" + d.Outcome + " at Notifications)"
		}
	}
	return " (no delivery at Notifications)"
}

func sameQty(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func qtyString(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Counts tallies verdicts by class.
func Counts(vs []Verdict) map[string]int {
	out := map[string]int{}
	for _, v := range vs {
		out[v.Class]++
	}
	return out
}

// Named returns the ids of the verdicts of class, sorted, at most n.
func Named(vs []Verdict, class string, n int) []string {
	var out []string
	for _, v := range vs {
		if v.Class == class {
			out = append(out, v.OrderID)
		}
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
