//go:build integration

package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/orchestrator"
	"github.com/stampede-dev/stampede/platform/saga"
)

// TestIntegrationStartsRealWorkflow runs a member against the stack's Kafka
// (KIP-848 protocol, topics and group of its own) and Temporal: a duplicated
// order.created starts exactly one workflow, with the memo and search
// attributes, and a shipment.delivered reaches it as a signal.
func TestIntegrationStartsRealWorkflow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	suffix := uuid.NewString()[:8]
	ordersTopic, shipTopic, dlqTopic := "test-orch-orders-"+suffix, "test-orch-shipping-"+suffix, "test-orch-dlq-"+suffix
	group := "test-orchestrator-" + suffix

	cl, err := kgo.NewClient(kafka.BaseOpts("orchestrator-itest", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := kafka.EnsureTopics(ctx, cl, []kafka.TopicSpec{{Name: ordersTopic, Partitions: 12}, {Name: shipTopic, Partitions: 2}, {Name: dlqTopic, Partitions: 1}}, 1); err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		adm.DeleteTopics(dctx, ordersTopic, shipTopic, dlqTopic)
		adm.DeleteGroup(dctx, group)
	})

	tc, err := client.DialContext(ctx, client.Options{HostPort: config.TemporalAddress(), Namespace: config.TemporalNamespace(),
		Logger: nopLogger()})
	if err != nil {
		t.Fatalf("the stack's Temporal is not reachable (run with `make test`): %v", err)
	}
	defer tc.Close()

	// SKU-OOS: should a worker of the stack pick the workflow up, it fails at
	// the first step (out of stock) and changes nothing anywhere.
	orderID := "itest-" + uuid.NewString()
	o := order(orderID, "itest-user")
	o.Items = []event.LineItem{{SKU: "SKU-OOS", Qty: 1, PriceCents: 1000}}
	created := record(t, ordersTopic, o.UserID, o, "cid-"+orderID)
	dup := &kgo.Record{Topic: ordersTopic, Key: created.Key, Value: created.Value, Headers: created.Headers}
	if err := cl.ProduceSync(ctx, created, dup).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wid := saga.WorkflowID(orderID)
	t.Cleanup(func() {
		tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer tcancel()
		_ = tc.TerminateWorkflow(tctx, wid, "", "orchestrator integration test done")
	})

	reg := prometheus.NewRegistry()
	mb := &member{reg: reg, m: orchestrator.NewMetrics(reg), km: kafka.NewMetrics(reg)}
	tmp := &orchestrator.Temporal{Client: tc}
	cons := orchestrator.New(orchestrator.Config{
		Group: group, ServerAssigned: true,
		OrdersTopic: ordersTopic, ShippingTopic: shipTopic, DLQTopic: dlqTopic,
	}, tmp, tmp, slog.New(slog.NewTextHandler(io.Discard, nil)), mb.km, mb.m)
	ccl, err := kgo.NewClient(append(kafka.BaseOpts("orchestrator-itest-member", config.KafkaBrokers()),
		append(cons.Opts(), kgo.WithHooks(mb.km))...)...)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(rctx, ccl) }()
	defer func() {
		stop()
		<-done
		ccl.Close()
	}()

	committed := func(topic string) int64 {
		os, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return -1
		}
		var n int64
		os.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.At > 0 {
				n += o.At
			}
		})
		return n
	}
	waitFor(t, "both records processed and committed", 60*time.Second, func() bool { return committed(ordersTopic) == 2 })
	if got := started(mb, "started"); got != 1 {
		t.Errorf("started = %v, want 1", got)
	}
	if got := started(mb, "already_started"); got != 1 {
		t.Errorf("already_started = %v, want 1 (the duplicate)", got)
	}

	desc, err := tc.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		t.Fatalf("describe %s: %v", wid, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if got := info.GetType().GetName(); got != saga.WorkflowType {
		t.Errorf("workflow type = %s, want %s", got, saga.WorkflowType)
	}
	if got := info.GetTaskQueue(); got != saga.TaskQueue {
		t.Errorf("task queue = %s, want %s", got, saga.TaskQueue)
	}
	var cid string
	if p := info.GetMemo().GetFields()["correlationId"]; p == nil {
		t.Error("memo has no correlationId")
	} else if err := converter.GetDefaultDataConverter().FromPayload(p, &cid); err != nil || cid != "cid-"+orderID {
		t.Errorf("memo correlationId = %q (%v), want cid-%s", cid, err, orderID)
	}
	if sa := info.GetSearchAttributes().GetIndexedFields()[saga.SearchAttrOrderID]; sa == nil {
		t.Errorf("search attribute %s not set", saga.SearchAttrOrderID)
	}

	// A delivery for the order: signalled while the workflow runs (no worker
	// needs to be there), or dropped as not found if a worker already failed it.
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		del := record(t, shipTopic, orderID, event.ShipmentDelivered{OrderID: orderID, ShipmentID: "itest-ship"}, "cid-"+orderID)
		if err := cl.ProduceSync(ctx, del).FirstErr(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivered signal handled", 30*time.Second, func() bool {
			return counter(reg, "stampede_orchestrator_signals_total", "signalled")+counter(reg, "stampede_orchestrator_signals_total", "not_found") == 1
		})
		waitFor(t, "shipping offset committed", 30*time.Second, func() bool { return committed(shipTopic) == 1 })
	}
	fmt.Printf("started %s on %s via group %s\n", wid, config.TemporalAddress(), group)
}

func nopLogger() *slogTemporalLogger { return &slogTemporalLogger{} }

// slogTemporalLogger drops the SDK's logs.
type slogTemporalLogger struct{}

func (*slogTemporalLogger) Debug(string, ...any) {}
func (*slogTemporalLogger) Info(string, ...any)  {}
func (*slogTemporalLogger) Warn(string, ...any)  {}
func (*slogTemporalLogger) Error(string, ...any) {}

// stretchedIDs starts, through the real Temporal, the order named refuse
// under an id 1100 characters long: the decoder refuses such an order id
// from Kafka, so only a starter can hand Temporal an id over its 1000
// limit (limit.maxIDLength). Every other order starts as it is.
type stretchedIDs struct {
	*orchestrator.Temporal
	refuse string
}

func (s stretchedIDs) StartOrder(ctx context.Context, in saga.Input) error {
	if in.Order.OrderID == s.refuse {
		in.Order.OrderID += strings.Repeat("x", 1100)
	}
	return s.Temporal.StartOrder(ctx, in)
}

// TestIntegrationRefusedStartIsDeadLettered: a start the real Temporal
// refuses (a workflow id over its length limit) is marked ErrRefused by the
// adapter, dead-lettered with Temporal's reason by the member, and the
// order behind it on the same partition starts.
func TestIntegrationRefusedStartIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	suffix := uuid.NewString()[:8]
	ordersTopic, shipTopic, dlqTopic := "test-orch-orders-"+suffix, "test-orch-shipping-"+suffix, "test-orch-dlq-"+suffix
	group := "test-orchestrator-" + suffix
	cl, err := kgo.NewClient(kafka.BaseOpts("orchestrator-itest", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := kafka.EnsureTopics(ctx, cl, []kafka.TopicSpec{{Name: ordersTopic, Partitions: 1}, {Name: shipTopic, Partitions: 1}, {Name: dlqTopic, Partitions: 1}}, 1); err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		adm.DeleteTopics(dctx, ordersTopic, shipTopic, dlqTopic)
		adm.DeleteGroup(dctx, group)
	})
	tc, err := client.DialContext(ctx, client.Options{HostPort: config.TemporalAddress(), Namespace: config.TemporalNamespace(), Logger: nopLogger()})
	if err != nil {
		t.Fatalf("the stack's Temporal is not reachable (run with `make test`): %v", err)
	}
	defer tc.Close()

	refusedID, nextID := "itest-refused-"+uuid.NewString(), "itest-next-"+uuid.NewString()
	tmp := &orchestrator.Temporal{Client: tc}
	// The adapter alone: Temporal's refusal is ErrRefused, not a transient error.
	long := order(refusedID+strings.Repeat("x", 1100), "itest-user")
	if err := tmp.StartOrder(ctx, saga.Input{Order: long, CorrelationID: "cid"}); !errors.Is(err, orchestrator.ErrRefused) {
		t.Fatalf("StartOrder with an 1100-character id = %v, want ErrRefused", err)
	}

	var recs []*kgo.Record
	for _, id := range []string{refusedID, nextID} {
		o := order(id, "itest-user")
		o.Items = []event.LineItem{{SKU: "SKU-OOS", Qty: 1, PriceCents: 1000}} // a worker that picks it up fails it at once
		o.TotalCents = 1000
		recs = append(recs, record(t, ordersTopic, o.UserID, o, "cid-"+id))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer tcancel()
		_ = tc.TerminateWorkflow(tctx, saga.WorkflowID(nextID), "", "orchestrator integration test done")
	})
	reg := prometheus.NewRegistry()
	mb := &member{reg: reg, m: orchestrator.NewMetrics(reg), km: kafka.NewMetrics(reg)}
	starter := stretchedIDs{Temporal: tmp, refuse: refusedID}
	cons := orchestrator.New(orchestrator.Config{Group: group, OrdersTopic: ordersTopic, ShippingTopic: shipTopic, DLQTopic: dlqTopic},
		starter, tmp, slog.New(slog.NewTextHandler(io.Discard, nil)), mb.km, mb.m)
	ccl, err := kgo.NewClient(append(kafka.BaseOpts("orchestrator-itest-member", config.KafkaBrokers()),
		append(cons.Opts(), kgo.WithHooks(mb.km))...)...)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(rctx, ccl) }()
	defer func() {
		stop()
		<-done
		ccl.Close()
	}()

	waitFor(t, "the next order started", 60*time.Second, func() bool { return started(mb, "started") == 1 })
	if got := started(mb, "refused"); got != 1 {
		t.Errorf("refused starts = %v, want 1", got)
	}
	if _, err := tc.DescribeWorkflowExecution(ctx, saga.WorkflowID(nextID), ""); err != nil {
		t.Errorf("the next order's workflow: %v", err)
	}
	dl, err := kgo.NewClient(append(kafka.BaseOpts("orchestrator-itest-dlq", config.KafkaBrokers()),
		kgo.ConsumeTopics(dlqTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	var got []*kgo.Record
	for len(got) == 0 && ctx.Err() == nil {
		dl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 1 {
		t.Fatalf("dead letters %d, want the refused order", len(got))
	}
	reason := kafka.Header(got[0], deadletter.HeaderReason)
	if !strings.Contains(reason, "refuses") || kafka.Header(got[0], deadletter.HeaderSourceTopic) != ordersTopic {
		t.Errorf("dead letter reason %q source %q, want Temporal's refusal of the order on %s", reason, kafka.Header(got[0], deadletter.HeaderSourceTopic), ordersTopic)
	}
}
