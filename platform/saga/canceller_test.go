package saga

import (
	"context"
	"errors"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/stampede-dev/stampede/platform/order"
)

type fakeTemporal struct {
	missing  bool
	closed   bool
	status   string
	queryErr error
	// queryHangs: the query answers only when its context ends, as Temporal
	// holds a query while the workflow's task is in flight.
	queryHangs bool
	signals    []CancelRequest
}

func (f *fakeTemporal) DescribeWorkflowExecution(ctx context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if f.missing {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	st := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	if f.closed {
		st = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: st}}, nil
}

func (f *fakeTemporal) QueryWorkflow(ctx context.Context, id, runID, q string, args ...any) (converter.EncodedValue, error) {
	if f.queryHangs {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	p, err := converter.GetDefaultDataConverter().ToPayloads(Status{Status: f.status})
	if err != nil {
		return nil, err
	}
	return encoded{p.Payloads[0]}, nil
}

func (f *fakeTemporal) SignalWorkflow(ctx context.Context, id, runID, name string, arg any) error {
	if id != WorkflowID("o-1") || name != SignalCancel {
		return errors.New("wrong signal target")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.signals = append(f.signals, arg.(CancelRequest))
	return nil
}

type encoded struct{ p *commonpb.Payload }

func (e encoded) HasValue() bool  { return true }
func (e encoded) Get(v any) error { return converter.GetDefaultDataConverter().FromPayload(e.p, v) }

func TestCanceller(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       *fakeTemporal
		want    string // "", "not_found", "refused"
		signals int
	}{
		{"ok/charging", &fakeTemporal{status: order.StatusChargingPayment}, "", 1},
		{"ok/query_failed", &fakeTemporal{queryErr: errors.New("no poller")}, "", 1},
		// A query held behind an open workflow task does not spend the
		// request's deadline: the signal still goes.
		{"ok/query_held", &fakeTemporal{queryHangs: true}, "", 1},
		{"err/unknown", &fakeTemporal{missing: true}, "not_found", 0},
		{"err/closed", &fakeTemporal{closed: true}, "refused", 0},
		{"err/in_transit", &fakeTemporal{status: order.StatusInTransit}, "refused", 0},
		{"err/shipped", &fakeTemporal{status: order.StatusShipped}, "refused", 0},
		{"err/compensating", &fakeTemporal{status: order.StatusCompensating}, "refused", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := (&Canceller{Client: tc.f}).Cancel(ctx, "o-1", "")
			var refused *order.CancelRefused
			switch tc.want {
			case "":
				if err != nil {
					t.Fatalf("err %v", err)
				}
			case "not_found":
				if !errors.Is(err, order.ErrNotFound) {
					t.Fatalf("err %v, want order.ErrNotFound", err)
				}
			case "refused":
				if !errors.As(err, &refused) || refused.Reason == "" {
					t.Fatalf("err %v, want *order.CancelRefused with a reason", err)
				}
			}
			if len(tc.f.signals) != tc.signals {
				t.Errorf("%d signals, want %d", len(tc.f.signals), tc.signals)
			}
			if tc.signals > 0 && tc.f.signals[0].Reason != DefaultCancelReason {
				t.Errorf("signal reason %q", tc.f.signals[0].Reason)
			}
		})
	}
}
