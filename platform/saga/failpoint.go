package saga

import (
	"time"

	"github.com/google/uuid"

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

// chargeKey is the idempotency key of the order's charge.
func chargeKey(orderID string) string {
	if failpoint.Armed(FailChargeFreshKey) {
		return uuid.NewString()
	}
	return IdempotencyKey(orderID, "charge")
}
