package saga

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

var (
	searchAttrOrderID = temporal.NewSearchAttributeKeyKeyword(SearchAttrOrderID)
	searchAttrUserID  = temporal.NewSearchAttributeKeyKeyword(SearchAttrUserID)
)

// WorkflowTaskTimeout is the saga's workflow task timeout, at least
// retryMax. A step's service call is a local activity, retried by the
// worker inside the open workflow task: the SDK keeps a retry there only
// while its backoff is at most this timeout (a longer one becomes a server
// timer and a new workflow task), and heartbeats a task still waiting at 80%
// of it (another task). At Temporal's default of 10 s, a saga that waited
// out a 15 s Payments fault took 3.8 workflow tasks and 1.9 retry timers
// (60 sagas of a short chaos run, 2026-12-07), against 1 task for a saga
// that did not wait; the waiting sagas' tasks landed on Temporal together as
// the fault ended. At 30 s no retry timer was left, but the heartbeats of
// the sagas waiting for their paced turn (hundreds after two faults at a
// 20/s peak) were still about 21 tasks a second beside 20 starts. At 60 s
// a wait under 48 s costs no task at all, and a longer one a heartbeat
// every 48 s. The price, both bounded by it: a task started on a worker
// that then dies is retried elsewhere after 60 s, not 10 s; and a signal or
// query to a saga waiting out an outage is seen at its next heartbeat, up
// to 48 s later (a cancel is delivered at once, and acted on then).
const WorkflowTaskTimeout = 60 * time.Second

// StartOptions are the options of the workflow of one order: a fixed id, so
// a duplicate or redelivered order.created starts nothing new (the start
// answers WorkflowExecutionAlreadyStarted, which the caller treats as done),
// the workflow task timeout above, and the search attributes to find it in
// the UI.
func StartOptions(orderID, userID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       WorkflowID(orderID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowTaskTimeout:      WorkflowTaskTimeout,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			searchAttrOrderID.ValueSet(orderID),
			searchAttrUserID.ValueSet(userID),
		),
	}
}

// StartOptionsFor is StartOptions for an input, with its correlation id in
// the memo. Start with
//
//	c.ExecuteWorkflow(ctx, saga.StartOptionsFor(in), saga.WorkflowType, in)
func StartOptionsFor(in Input) client.StartWorkflowOptions {
	opts := StartOptions(in.Order.OrderID, in.Order.UserID)
	if in.CorrelationID != "" {
		opts.Memo = map[string]any{"correlationId": in.CorrelationID}
	}
	return opts
}
