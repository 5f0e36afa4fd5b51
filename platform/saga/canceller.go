package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/stampede-dev/stampede/platform/order"
)

// TemporalClient is what the Canceller needs from a Temporal client.
type TemporalClient interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error)
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// Canceller implements order.Canceller with the status query and the
// cancel signal of the order's workflow.
type Canceller struct {
	Client TemporalClient
}

var _ order.Canceller = (*Canceller)(nil)

// Cancellable reports whether a saga in status st still takes a cancel, and
// if not, why.
func Cancellable(st Status) (bool, string) {
	switch st.Status {
	case order.StatusShipped, order.StatusInTransit:
		return false, "order has shipped; it can no longer be cancelled"
	case order.StatusDelivered, order.StatusFailed, order.StatusCancelled:
		return false, "order is already " + st.Status
	case order.StatusCompensating:
		return false, "order is already being compensated: " + st.FailureReason
	}
	return true, ""
}

// statusQueryTimeout bounds the status query before a cancel; the query
// answers in milliseconds unless a workflow task is in flight.
const statusQueryTimeout = time.Second

// Cancel answers order.ErrNotFound when the order has no workflow, a
// *order.CancelRefused once the order is past shipment or finished, and nil
// once the cancel signal is delivered (the workflow has the last word: a
// cancel that races the shipment shows up as CancelRefused in the status).
func (c *Canceller) Cancel(ctx context.Context, orderID, reason string) error {
	id := WorkflowID(orderID)
	desc, err := c.Client.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return order.ErrNotFound
	case err != nil:
		return fmt.Errorf("saga: describe %s: %w", id, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return &order.CancelRefused{Reason: "order is already finished"}
	}
	// The query gets a bound of its own: Temporal holds a query until the
	// workflow task in flight completes, and a saga waiting out an outage
	// keeps its task open for up to 0.8 x WorkflowTaskTimeout. Without the
	// bound the query would spend the request's whole deadline and the
	// signal below would fail with it.
	qctx, cancel := context.WithTimeout(ctx, statusQueryTimeout)
	v, err := c.Client.QueryWorkflow(qctx, id, "", QueryStatus)
	cancel()
	if err == nil {
		var st Status
		if err := v.Get(&st); err == nil {
			if ok, why := Cancellable(st); !ok {
				return &order.CancelRefused{Reason: why}
			}
		}
	}
	// A failed query (no worker answering right now) does not block the
	// cancel: the signal is durable and the workflow decides.
	if reason == "" {
		reason = DefaultCancelReason
	}
	err = c.Client.SignalWorkflow(ctx, id, "", SignalCancel, CancelRequest{Reason: reason})
	switch {
	case errors.As(err, &nf):
		return &order.CancelRefused{Reason: "order is already finished"}
	case err != nil:
		return fmt.Errorf("saga: signal cancel to %s: %w", id, err)
	}
	return nil
}
