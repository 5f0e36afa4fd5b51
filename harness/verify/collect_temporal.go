package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
)

// sagaStatus mirrors the JSON of saga.Status (platform/saga/contract.go),
// the answer of the workflow's status query. The verifier keeps its own
// copy so it depends on the contract's wire form, not on the saga package.
type sagaStatus struct {
	OrderID       string `json:"orderId"`
	Status        string `json:"status"`
	FailureReason string `json:"failureReason"`
	Compensations []struct {
		Name        string    `json:"name"`
		CompletedAt time.Time `json:"completedAt"`
		Stuck       bool      `json:"stuck"`
	} `json:"compensations"`
	FailedAt      time.Time `json:"failedAt"`
	CompensatedAt time.Time `json:"compensatedAt"`
}

func (s sagaStatus) saga() *Saga {
	out := &Saga{Status: s.Status, Reason: s.FailureReason, FailedAt: s.FailedAt, CompensatedAt: s.CompensatedAt}
	for _, c := range s.Compensations {
		if c.CompletedAt.IsZero() {
			out.Pending = append(out.Pending, c.Name)
		} else {
			out.Compensations = append(out.Compensations, c.Name)
		}
	}
	return out
}

// Temporal workflow identity, as platform/saga names them.
const (
	WorkflowType   = "OrderWorkflow"
	QueryStatus    = "status"
	workflowPrefix = "order-"
)

// TemporalFacts reads Temporal: visibility for every run of every order's
// workflow, and each latest run's own status query.
type TemporalFacts struct {
	Client      client.Client
	Namespace   string
	Concurrency int // status queries in flight; default 8
}

// Fill adds the workflows of the orders in facts. Workflows started before
// since are not listed (they belong to earlier runs).
func (t TemporalFacts) Fill(ctx context.Context, since time.Time, facts map[string]*Facts) error {
	runs := map[string][]run{}
	var token []byte
	query := fmt.Sprintf("WorkflowType = '%s' AND StartTime >= '%s'", WorkflowType, since.UTC().Format(time.RFC3339Nano))
	for {
		resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: t.Namespace, Query: query, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("temporal visibility (%s): %w", query, err)
		}
		for _, e := range resp.Executions {
			addRun(runs, e)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	n := t.Concurrency
	if n <= 0 {
		n = 8
	}
	g.SetLimit(n)
	var failed []string
	for id, f := range facts {
		wfs := latestFirst(runs[id])
		if len(wfs) == 0 {
			continue
		}
		f.Workflows = wfs
		g.Go(func() error {
			s, err := t.status(gctx, id, wfs[0])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if len(failed) < 5 {
					failed = append(failed, fmt.Sprintf("%s: %v", id, err))
				}
				return nil
			}
			f.Workflows[0].Saga = s
			return nil
		})
	}
	g.Wait()
	if len(failed) > 0 {
		// Classify still runs (the order's status from the Orders service
		// stands in), but the run says which workflows could not be read.
		return fmt.Errorf("status query failed for some workflows: %s", strings.Join(failed, "; "))
	}
	return nil
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

// status asks the run for its own account: the status query, or for a
// completed run whose worker cannot answer, its result.
func (t TemporalFacts) status(ctx context.Context, orderID string, w Workflow) (*Saga, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var st sagaStatus
	v, err := t.Client.QueryWorkflow(qctx, workflowPrefix+orderID, w.RunID, QueryStatus)
	if err == nil {
		if err = v.Get(&st); err == nil {
			return st.saga(), nil
		}
	}
	if w.Status == "Completed" {
		if rerr := t.Client.GetWorkflow(qctx, workflowPrefix+orderID, w.RunID).Get(qctx, &st); rerr == nil {
			return st.saga(), nil
		}
	}
	return nil, errors.Join(fmt.Errorf("query %s", QueryStatus), err)
}
