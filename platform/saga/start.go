package saga

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

var (
	searchAttrOrderID = temporal.NewSearchAttributeKeyKeyword(SearchAttrOrderID)
	searchAttrUserID  = temporal.NewSearchAttributeKeyKeyword(SearchAttrUserID)
)

// StartOptions are the options of the workflow of one order: a fixed id, so
// a duplicate or redelivered order.created starts nothing new (the start
// answers WorkflowExecutionAlreadyStarted, which the caller treats as done),
// and the search attributes to find it in the UI.
func StartOptions(orderID, userID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       WorkflowID(orderID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
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
