package saga

import (
	"time"

	"github.com/google/uuid"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/failpoint"
)

// Failpoints that break the saga on purpose (see package failpoint), armed
// in a worker's STAMPEDE_FAILPOINTS, each a realistic defect the chaos
// selftest must catch (FailSkipRefund is in activities.go). Unarmed, each
// costs one map lookup where it sits.
const (
	// FailCompensationGiveUp: a compensation that fails once is given up
	// and reported done (its error swallowed).
	FailCompensationGiveUp = "saga.compensation-give-up"
	// FailCompensationDelay: the saga waits compensationDelayBy before it
	// starts compensating, and its own account (FailedAt) starts after the
	// wait, so only the stores' clocks show it.
	FailCompensationDelay = "saga.compensation-delay"
	// FailChargeFreshKey: every charge attempt carries a new idempotency key
	// instead of the order's, so Payments cannot tell a retry from a new
	// charge.
	FailChargeFreshKey = "saga.charge-fresh-key"
	// FailChargeOffByOne: the charge's amount is summed from the order's
	// lines with a loop bound off by one: one line's price short (a
	// one-line order: nothing). The order's own total, which the event
	// checks against its lines, stays right.
	FailChargeOffByOne = "saga.charge-off-by-one"
	// FailShortBudget: the worker's outage budget is cut to shortBudget (a
	// unit slip in its configuration); wired in cmd/stampede (serve_worker.go).
	FailShortBudget = "saga.short-budget"
)

const (
	compensationDelayBy = 40 * time.Second
	// ShortBudget is the outage budget FailShortBudget leaves the worker.
	ShortBudget = 5 * time.Second
)

// compensationDelay is the wait FailCompensationDelay puts before compensating.
func compensationDelay() time.Duration {
	if failpoint.Armed(FailCompensationDelay) {
		return compensationDelayBy
	}
	return 0
}

// chargeAmount is what the order's charge asks for.
func chargeAmount(o event.OrderCreated) int64 {
	if !failpoint.Armed(FailChargeOffByOne) {
		return o.TotalCents
	}
	var t int64
	for _, it := range o.Items[:len(o.Items)-1] {
		t += int64(it.Qty) * it.PriceCents
	}
	return t
}

// chargeKey is the idempotency key of the order's charge.
func chargeKey(orderID string) string {
	if failpoint.Armed(FailChargeFreshKey) {
		return uuid.NewString()
	}
	return IdempotencyKey(orderID, "charge")
}
