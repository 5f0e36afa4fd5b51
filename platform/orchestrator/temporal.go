package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

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

// StartOptions are saga.StartOptionsFor(in) (fixed id, reject duplicate,
// conflict policy fail, search attributes, correlation id in the memo), with
// a duplicate reported as an error so it can be counted as already started.
func StartOptions(in saga.Input) client.StartWorkflowOptions {
	opts := saga.StartOptionsFor(in)
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	return opts
}

// StartOrder starts the order's workflow; ErrAlreadyStarted when it exists.
func (t *Temporal) StartOrder(ctx context.Context, in saga.Input) error {
	_, err := t.Client.ExecuteWorkflow(ctx, StartOptions(in), saga.WorkflowType, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return fmt.Errorf("%w: %s", ErrAlreadyStarted, already.Error())
	}
	return refused(err)
}

// refused marks the errors by which Temporal refuses a call for what it
// carries (serviceerror.InvalidArgument: a bad id, a blob over the size
// limit) as ErrRefused; the rest it returns unchanged.
func refused(err error) error {
	var inv *serviceerror.InvalidArgument
	if errors.As(err, &inv) {
		return fmt.Errorf("%w: %s", ErrRefused, inv.Error())
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
	return refused(err)
}
