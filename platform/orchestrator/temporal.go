package orchestrator

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/stampede-dev/stampede/platform/saga"
)

// Temporal is the Starter and Signaler backed by a Temporal client.
type Temporal struct {
	Client client.Client
}

var (
	_ Starter  = (*Temporal)(nil)
	_ Signaler = (*Temporal)(nil)
)

// Search attribute keys the workflow is started with (registered by stampede-temporal).
var (
	searchAttrOrderID = temporal.NewSearchAttributeKeyKeyword(saga.SearchAttrOrderID)
	searchAttrUserID  = temporal.NewSearchAttributeKeyKeyword(saga.SearchAttrUserID)
)

// StartOptions are the options an order's workflow is started with: its
// fixed id, and a duplicate (running or closed) is an error the caller
// reads as "already started".
func StartOptions(in saga.Input) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       saga.WorkflowID(in.Order.OrderID),
		TaskQueue:                                saga.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			searchAttrOrderID.ValueSet(in.Order.OrderID),
			searchAttrUserID.ValueSet(in.Order.UserID),
		),
		Memo: map[string]any{"correlationId": in.CorrelationID},
	}
}

// StartOrder starts the order's workflow; ErrAlreadyStarted when it exists.
func (t *Temporal) StartOrder(ctx context.Context, in saga.Input) error {
	_, err := t.Client.ExecuteWorkflow(ctx, StartOptions(in), saga.WorkflowType, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return fmt.Errorf("%w: %s", ErrAlreadyStarted, already.Error())
	}
	return err
}

// SignalDelivered signals the order's running workflow; ErrWorkflowNotFound
// when there is none (never started, or already closed).
func (t *Temporal) SignalDelivered(ctx context.Context, orderID string, s saga.DeliveredSignal) error {
	err := t.Client.SignalWorkflow(ctx, saga.WorkflowID(orderID), "", saga.SignalDelivered, s)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %s", ErrWorkflowNotFound, nf.Error())
	}
	return err
}
