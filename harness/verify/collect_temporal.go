package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
)

// Temporal workflow identity, as platform/saga names them. The verifier
// keeps its own copies so it depends on the saga's wire contract (workflow
// type, activity names, the business failure type), not on its code.
const (
	WorkflowType        = "OrderWorkflow"
	workflowPrefix      = "order-"
	errTypeBusiness     = "BusinessFailure"
	markerLocalActivity = "LocalActivity"
	markerDataKey       = "data"
)

// TemporalFacts reads Temporal: visibility for every run of every order's
// workflow, and each latest run's history.
type TemporalFacts struct {
	Client      client.Client
	Namespace   string
	Concurrency int // histories read at once; default 8
}

// Fill adds the workflows and histories of the orders in facts. Workflows
// started before since are not listed (they belong to earlier runs).
// Workflows it lists that belong to no order of facts are returned as
// orphans (order ids). An error means visibility could not be read; a
// history that cannot be read is named in gaps and leaves that order's
// History nil.
func (t TemporalFacts) Fill(ctx context.Context, since time.Time, facts map[string]*Facts) (orphans, gaps []string, err error) {
	runs := map[string][]run{}
	var token []byte
	query := fmt.Sprintf("WorkflowType = '%s' AND StartTime >= '%s'", WorkflowType, since.UTC().Format(time.RFC3339Nano))
	for {
		resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: t.Namespace, Query: query, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, nil, fmt.Errorf("temporal visibility (%s): %w", query, err)
		}
		for _, e := range resp.Executions {
			addRun(runs, e)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	for id := range runs {
		if facts[id] == nil {
			orphans = append(orphans, id)
		}
	}
	sort.Strings(orphans)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	n := t.Concurrency
	if n <= 0 {
		n = 8
	}
	g.SetLimit(n)
	failed := 0
	for id, f := range facts {
		wfs := latestFirst(runs[id])
		if len(wfs) == 0 {
			continue
		}
		f.Workflows = wfs
		g.Go(func() error {
			h, err := t.history(gctx, id, wfs[0].RunID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if len(gaps) < 5 {
					gaps = append(gaps, fmt.Sprintf("history of order-%s: %v", id, err))
				}
				return nil
			}
			f.History = h
			return nil
		})
	}
	g.Wait()
	if failed > len(gaps) {
		gaps = append(gaps, fmt.Sprintf("... %d histories unread in all", failed))
	}
	return orphans, gaps, nil
}

type run struct {
	Workflow
	start time.Time
}

// addRun files one execution under its order.
func addRun(runs map[string][]run, e *workflowpb.WorkflowExecutionInfo) {
	id, ok := strings.CutPrefix(e.GetExecution().GetWorkflowId(), workflowPrefix)
	if !ok {
		return
	}
	runs[id] = append(runs[id], run{Workflow{RunID: e.GetExecution().GetRunId(), Status: runStatus(e.GetStatus().String())}, e.GetStartTime().AsTime()})
}

// latestFirst returns the runs of one workflow id, latest start first.
func latestFirst(rs []run) []Workflow {
	sort.Slice(rs, func(i, j int) bool { return rs[i].start.After(rs[j].start) })
	out := make([]Workflow, len(rs))
	for i, r := range rs {
		out[i] = r.Workflow
	}
	return out
}

// runStatus turns "WORKFLOW_EXECUTION_STATUS_RUNNING" into "Running".
func runStatus(s string) string {
	s = strings.TrimPrefix(s, "WORKFLOW_EXECUTION_STATUS_")
	if s == "" {
		return s
	}
	s = strings.ReplaceAll(strings.ToLower(s), "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// history reads one run's events.
func (t TemporalFacts) history(ctx context.Context, orderID, runID string) (*History, error) {
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	it := t.Client.GetWorkflowHistory(hctx, workflowPrefix+orderID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return ReadHistory(events)
}

// markerData is the SDK's record of a local activity's result
// (localActivityMarkerData in go.temporal.io/sdk/internal): ReplayTime is
// the workflow time the result was applied, Attempt the attempts it took.
type markerData struct {
	ActivityType string    `json:"ActivityType"`
	ReplayTime   time.Time `json:"ReplayTime"`
	Attempt      int       `json:"Attempt"`
}

// ReadHistory turns a run's events into its steps: every local activity
// marker in order, each due from the end of the one before it (the workflow
// moves straight from one step to the next), or from the run's start.
func ReadHistory(events []*historypb.HistoryEvent) (*History, error) {
	h := &History{}
	var last time.Time
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			h.Start = e.GetEventTime().AsTime()
			last = h.Start
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			h.Signals = append(h.Signals, e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			h.Closed = "Completed"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			h.Closed = "Failed"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			h.Closed = "Terminated"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			h.Closed = "Canceled"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			h.Closed = "Timed out"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			h.Closed = "Continued as new"
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := e.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() != markerLocalActivity {
				continue
			}
			p := a.GetDetails()[markerDataKey].GetPayloads()
			if len(p) == 0 {
				return nil, fmt.Errorf("event %d: local activity marker without its data", e.GetEventId())
			}
			var d markerData
			if err := json.Unmarshal(p[0].GetData(), &d); err != nil {
				return nil, fmt.Errorf("event %d: local activity marker data: %w", e.GetEventId(), err)
			}
			s := StepRun{Activity: d.ActivityType, Start: last, End: d.ReplayTime, Attempts: d.Attempt}
			if n := len(h.Steps); n > 0 && h.Steps[n-1].Activity == s.Activity && h.Steps[n-1].Failed {
				// The same step again after a backoff timer: one wait.
				s.Start = h.Steps[n-1].Start
				s.Attempts = max(s.Attempts, h.Steps[n-1].Attempts+1)
			}
			if f := a.GetFailure(); f != nil {
				s.Failed = true
				s.Message, s.Business = failureOf(f)
			}
			h.Steps = append(h.Steps, s)
			last = s.End
		}
	}
	if h.Start.IsZero() {
		return nil, errors.New("no start event in the history")
	}
	return h, nil
}

// failureOf finds the application failure in a failure's cause chain: its
// message, and whether it is the saga's business refusal.
func failureOf(f *failurepb.Failure) (string, bool) {
	msg := f.GetMessage()
	for c := f; c != nil; c = c.GetCause() {
		if info := c.GetApplicationFailureInfo(); info != nil {
			return c.GetMessage(), info.GetType() == errTypeBusiness
		}
	}
	return msg, false
}
