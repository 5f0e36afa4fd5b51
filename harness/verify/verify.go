// Package verify audits a load or chaos run order by order, from ground
// truth: the k6 ledger of every placement attempt and every service's own
// store (orders, reservations, charges and refunds, shipments, notifications,
// Temporal visibility). It classifies each order and evaluates the gates
// that decide the run's verdict.
//
// It must never trust the platform's summary counters: a verdict is only as
// good as the per-order facts behind it.
package verify

import (
	"fmt"
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
}

// Order is the Orders service's row of an order.
type Order struct {
	ID            string
	Status        string
	FailureReason string
	CreatedAt     time.Time
}

// Workflow is one run of an order's saga in Temporal.
type Workflow struct {
	RunID  string
	Status string // Running, Completed, Failed, Terminated, ...
	// Saga is what the workflow reports about itself (query or result); nil
	// when it could not be read.
	Saga *Saga
}

// Saga is the saga's own account of an order.
type Saga struct {
	Status        string    // the saga status: an order status (platform/order)
	Reason        string    // failure or cancellation reason
	FailedAt      time.Time // when the workflow decided to compensate
	CompensatedAt time.Time // when the last compensation completed
	Compensations []string  // compensations done, in order
	Pending       []string  // compensations still retrying
}

// Reservation is an Inventory reservation.
type Reservation struct {
	ID       string
	Released bool
	Items    map[string]int // sku -> qty
}

// Charge is a Payments charge and its refunds.
type Charge struct {
	ID            string
	Captured      bool
	AmountCents   int64
	RefundedCents int64
	Refunds       int
}

// Shipment is a Shipping shipment.
type Shipment struct {
	ID        string
	Cancelled bool
}

// Delivery is the outcome of one (template, channel) of an order's notifications.
type Delivery struct {
	Template string
	Channel  string
	Sent     int    // times the provider accepted it; more than one is a duplicate
	Outcome  string // delivered, failed, skipped, pending
}

// Facts are everything the services' stores say about one order.
type Facts struct {
	Order        *Order // nil: the Orders service has no such order
	Workflows    []Workflow
	Reservations []Reservation
	Charges      []Charge
	Shipments    []Shipment
	Deliveries   []Delivery
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
	Status  string   `json:"status,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// CompensationTime is failure decision -> last compensation completed,
	// for compensated orders.
	CompensationTime time.Duration `json:"compensationTimeNs,omitempty"`
}

// Preshipment reports whether a saga in status s has not yet decided its
// fate: the verifier waits until no saga is in such a state.
func Preshipment(s string) bool {
	switch s {
	case order.StatusPending, order.StatusProcessing, order.StatusReservingInventory,
		order.StatusChargingPayment, order.StatusCreatingShipment, order.StatusCompensating:
		return true
	}
	return false
}

// Classify audits one order: line is its ledger entry (Outcome acked,
// rejected or unknown), f what the stores say.
func Classify(line LedgerLine, f Facts) Verdict {
	v := Verdict{OrderID: line.OrderID, Expect: line.Expect}
	if f.Order != nil {
		v.Status = f.Order.Status
	}
	exists := f.Order != nil || len(f.Workflows) > 0
	switch line.Outcome {
	case OutcomeRejected:
		if exists {
			v.Class = ClassInconsistent
			v.Reasons = append(v.Reasons, "the API rejected the order but it exists in the platform")
			return v
		}
		v.Class = ClassRejected
		return v
	case OutcomeUnknown:
		if !exists {
			v.Class = ClassRejected
			v.Reasons = append(v.Reasons, "client saw a timeout; the platform has no such order")
			return v
		}
	}

	// From here the order exists (or was acked and must exist).
	if f.Order == nil {
		v.Class = ClassLost
		v.Reasons = append(v.Reasons, "acknowledged by the API but unknown to the Orders service")
		return v
	}
	if len(f.Workflows) == 0 {
		v.Class = ClassLost
		v.Reasons = append(v.Reasons, "no workflow order-"+line.OrderID+" in Temporal")
		return v
	}

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
	for _, d := range f.Deliveries {
		if d.Sent > 1 {
			dup = append(dup, fmt.Sprintf("%s on %s sent %d times", d.Template, d.Channel, d.Sent))
		}
	}
	if len(dup) > 0 {
		v.Class = ClassDuplicated
		v.Reasons = dup
		return v
	}

	saga := f.Workflows[0].Saga
	status := f.Order.Status
	if saga != nil && saga.Status != "" {
		status = saga.Status
	}
	v.Status = status
	switch {
	case status == order.StatusFailed || status == order.StatusCancelled:
		return classifyFailed(v, line, f, saga)
	case status == order.StatusDelivered || status == order.StatusInTransit || status == order.StatusShipped:
		return classifySucceeded(v, line, f)
	case Preshipment(status):
		v.Class = ClassLost
		v.Reasons = append(v.Reasons, "no terminal state: saga still in "+status)
		return v
	default:
		v.Class = ClassInconsistent
		v.Reasons = append(v.Reasons, "unknown saga status "+status)
		return v
	}
}

func classifySucceeded(v Verdict, line LedgerLine, f Facts) Verdict {
	var bad []string
	if line.Expect != ExpectComplete && line.Expect != "" {
		bad = append(bad, fmt.Sprintf("expected %s but the order succeeded", line.Expect))
	}
	held := 0
	for _, r := range f.Reservations {
		if !r.Released {
			held++
		}
	}
	if held != 1 {
		bad = append(bad, fmt.Sprintf("%d reservations held, want 1", held))
	}
	captured := 0
	for _, c := range f.Charges {
		if c.Captured {
			captured++
			if c.Refunds > 0 {
				bad = append(bad, "refund without failure (charge "+c.ID+")")
			}
		}
	}
	if captured != 1 {
		bad = append(bad, fmt.Sprintf("%d captured charges, want 1", captured))
	}
	live := 0
	for _, s := range f.Shipments {
		if !s.Cancelled {
			live++
		}
	}
	if live != 1 {
		bad = append(bad, fmt.Sprintf("%d live shipments, want 1", live))
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

func classifyFailed(v Verdict, line LedgerLine, f Facts, saga *Saga) Verdict {
	var bad []string
	if line.Expect == ExpectComplete && !allowedFailure(saga) {
		reason := ""
		if saga != nil {
			reason = saga.Reason
		}
		bad = append(bad, fmt.Sprintf("expected to complete but failed (%s)", reason))
	}
	for _, r := range f.Reservations {
		if !r.Released {
			bad = append(bad, "leaked reservation "+r.ID)
		}
	}
	for _, c := range f.Charges {
		if c.Captured && c.RefundedCents < c.AmountCents {
			bad = append(bad, fmt.Sprintf("charged and failed without a full refund (charge %s: %d of %d cents refunded)", c.ID, c.RefundedCents, c.AmountCents))
		}
	}
	for _, s := range f.Shipments {
		if !s.Cancelled {
			bad = append(bad, "shipment "+s.ID+" not cancelled")
		}
	}
	template := notification.TemplateOrderFailed
	if v.Status == order.StatusCancelled {
		template = notification.TemplateOrderCancelled
	}
	notified := false
	for _, d := range f.Deliveries {
		if d.Template == template {
			notified = true
		}
	}
	if !notified {
		bad = append(bad, "failure not notified ("+template+")")
	}
	if saga != nil && len(saga.Pending) > 0 {
		bad = append(bad, "compensations still pending: "+strings.Join(saga.Pending, ", "))
	}
	if len(bad) > 0 {
		v.Class, v.Reasons = ClassInconsistent, bad
		return v
	}
	v.Class = ClassCompensated
	if saga != nil && !saga.FailedAt.IsZero() && !saga.CompensatedAt.IsZero() {
		v.CompensationTime = saga.CompensatedAt.Sub(saga.FailedAt)
	}
	return v
}

// allowedFailure reports whether an order expected to complete may fail
// anyway: an infrastructure outage longer than the outage budget, or a
// customer's cancellation, is a legitimate failure, as long as it is compensated.
func allowedFailure(s *Saga) bool {
	if s == nil {
		return false
	}
	return s.Status == order.StatusCancelled || strings.Contains(s.Reason, "unavailable for")
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
