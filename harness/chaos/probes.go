package chaos

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/stampede-dev/stampede/harness/lagsample"
	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/verify"
	"github.com/stampede-dev/stampede/platform/order"
)

// probe checks the steady-state hypothesis: every component healthy, the
// payments path clean, consumer lag under the limit, no saga stuck. settle
// is the outcome of waiting for the run's own sagas (nil before the run).
func (e *Experiment) probe(ctx context.Context, facts verify.DBFacts, settle error) []report.Probe {
	var out []report.Probe

	var bad []string
	for _, st := range e.cfg.Stack.Status(ctx) {
		switch {
		case st.State == "external" && st.Ready, st.State == "running" && st.Ready:
		case st.State == "running" || st.State == "external":
			bad = append(bad, fmt.Sprintf("%s not ready (%s)", st.Name, firstLine(st.Err)))
		default:
			bad = append(bad, st.Name+" "+st.State)
		}
	}
	out = append(out, report.Probe{Name: "every component healthy", OK: len(bad) == 0, Detail: strings.Join(bad, "; ")})

	if err := e.toxics.Check("payments"); err != nil {
		out = append(out, report.Probe{Name: "payments path clean", OK: false, Detail: err.Error()})
	} else {
		out = append(out, report.Probe{Name: "payments path clean", OK: true})
	}

	// Lag over the last second of samples.
	var max time.Duration
	n := 0
	since := time.Now().Add(-time.Second)
	for _, p := range lagsample.PerPoll(e.sampler.Samples()) {
		if p.At.After(since) {
			n++
			if p.Lag > max {
				max = p.Lag
			}
		}
	}
	lp := report.Probe{Name: "consumer lag under " + e.cfg.Limits.MaxLag.String(), OK: n > 0 && max < e.cfg.Limits.MaxLag,
		Detail: fmt.Sprintf("max %s over %d polls of the last second", max.Round(time.Millisecond), n)}
	if n == 0 {
		errs, last := e.sampler.Errors()
		lp.Detail = fmt.Sprintf("no lag sample in the last second (%d failed polls, last: %v)", errs, last)
	}
	out = append(out, lp)

	all, err := stuckSagas(ctx, facts)
	if err == nil && e.temporal != nil && len(all) > 0 {
		// A saga is stuck only while its workflow runs: an order shown
		// before its decision whose workflow closed, or that has none, is
		// an earlier run's finding (a stale view, a lost order), not a saga
		// this run would wait on.
		all, err = e.runningOnly(ctx, all)
	}
	// Orders stuck before the run are its starting point, not its doing:
	// the after probe names only the new ones.
	e.mu.Lock()
	before := e.stuckBefore
	if before == nil {
		e.stuckBefore = map[string]bool{}
		for _, s := range all {
			e.stuckBefore[s.id] = true
		}
	}
	e.mu.Unlock()
	var ids []string
	stuck := 0
	for _, s := range all {
		if before[s.id] || (e.cfg.Leftovers && s.created.Before(e.res.Started)) {
			continue
		}
		stuck++
		if len(ids) < 5 {
			ids = append(ids, s.id+" ("+s.status+")")
		}
	}
	sp := report.Probe{Name: "no saga stuck", OK: err == nil && stuck == 0}
	switch {
	case err != nil:
		sp.Detail = err.Error()
	case stuck > 0:
		sp.Detail = fmt.Sprintf("%d orders undecided for over 2 minutes: %s", stuck, strings.Join(ids, ", "))
	}
	if before != nil && len(before) > 0 {
		sp.Detail = strings.TrimPrefix(sp.Detail+fmt.Sprintf("; %d orders already stuck before the run left out", len(before)), "; ")
	}
	if settle != nil {
		sp.OK = false
		sp.Detail = strings.TrimPrefix(strings.TrimSpace(sp.Detail+"; this run's orders: "+settle.Error()), "; ")
	}
	out = append(out, sp)
	return out
}

// stuckSagas counts orders of the last half hour still before the shipment
// decision two minutes after they were placed.
type stuckOrder struct {
	id, status string
	created    time.Time
}

func stuckSagas(ctx context.Context, facts verify.DBFacts) ([]stuckOrder, error) {
	rows, err := facts.DB.Query(ctx, `SELECT id::text, status, created_at FROM orders.orders
WHERE created_at > now() - interval '30 minutes' AND created_at < now() - interval '2 minutes'
AND status = ANY($1) ORDER BY created_at LIMIT 10000`, preshipment())
	if err != nil {
		return nil, fmt.Errorf("orders.orders: %w", err)
	}
	defer rows.Close()
	var out []stuckOrder
	for rows.Next() {
		var s stuckOrder
		if err := rows.Scan(&s.id, &s.status, &s.created); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// runningOnly keeps the orders whose workflow Temporal still runs.
func (e *Experiment) runningOnly(ctx context.Context, orders []stuckOrder) ([]stuckOrder, error) {
	since := time.Now().Add(-31 * time.Minute)
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND StartTime >= '%s'", verify.WorkflowType, since.UTC().Format(time.RFC3339Nano))
	running := map[string]bool{}
	var token []byte
	for {
		resp, err := e.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: e.cfg.Namespace, Query: query, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("temporal visibility (%s): %w", query, err)
		}
		for _, x := range resp.Executions {
			running[strings.TrimPrefix(x.GetExecution().GetWorkflowId(), "order-")] = true
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	var out []stuckOrder
	for _, o := range orders {
		if running[o.id] {
			out = append(out, o)
		}
	}
	return out, nil
}

func preshipment() []string {
	var out []string
	for _, s := range []string{order.StatusPending, order.StatusProcessing, order.StatusReservingInventory,
		order.StatusChargingPayment, order.StatusCreatingShipment, order.StatusCompensating} {
		if verify.Preshipment(s) {
			out = append(out, s)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

// pushFaults sends every fault's state to Prometheus each second, so
// dashboards can shade the windows (stampede_chaos_fault_active).
func (e *Experiment) pushFaults(ctx context.Context) {
	if e.cfg.PromURL == "" {
		return
	}
	w := RemoteWriter{URL: e.cfg.PromURL + "/api/v1/write"}
	warned := false
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		e.mu.Lock()
		active := map[string]bool{}
		for k, v := range e.active {
			active[k] = v
		}
		e.mu.Unlock()
		if len(active) > 0 {
			if err := w.Push(ctx, FaultSeries(e.cfg.Run, active, time.Now())); err != nil && !warned && ctx.Err() == nil {
				warned = true
				e.logf("fault windows not pushed to Prometheus: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// countLedger follows the ledger for the live line.
func (e *Experiment) countLedger(ctx context.Context) {
	path := e.cfg.Out + "/ledger.jsonl"
	var off int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		f.Seek(off, 0)
		buf := make([]byte, 1<<20)
		for {
			n, err := f.Read(buf)
			chunk := buf[:n]
			// count whole lines only
			last := strings.LastIndexByte(string(chunk), '\n')
			if last >= 0 {
				lines := string(chunk[:last+1])
				e.mu.Lock()
				e.placed += strings.Count(lines, "\n")
				e.acked += strings.Count(lines, `"outcome":"acked"`)
				e.mu.Unlock()
				off += int64(last + 1)
				f.Seek(off, 0)
			}
			if err != nil || n == 0 || last < 0 {
				break
			}
		}
		f.Close()
	}
}

// progress draws the live line.
func (e *Experiment) progress(ctx context.Context) {
	if e.cfg.Progress == nil {
		return
	}
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.clearLine()
			return
		case <-t.C:
		}
		e.mu.Lock()
		var on []string
		for k, v := range e.active {
			if v {
				on = append(on, k)
			}
		}
		sort.Strings(on)
		line := fmt.Sprintf("chaos %s +%s | %s | placed %d acked %d", e.cfg.Run, time.Since(start).Round(time.Second), e.phase, e.placed, e.acked)
		if e.phase == "settling" {
			line += fmt.Sprintf(" | unsettled %d (%s)", e.settling, e.settleWhy)
		}
		e.mu.Unlock()
		if lag, ok := e.sampler.Latest(); ok {
			line += " | lag " + lag.Round(time.Millisecond).String()
		}
		if len(on) > 0 {
			line += " | FAULT " + strings.Join(on, ",")
		}
		if e.cfg.PlainProgress {
			if time.Since(start).Round(time.Second)%(10*time.Second) == 0 {
				fmt.Fprintln(e.cfg.Progress, line)
			}
			continue
		}
		fmt.Fprintf(e.cfg.Progress, "\r\033[K%s", line)
	}
}

func (e *Experiment) clearLine() {
	if e.cfg.Progress != nil && !e.cfg.PlainProgress {
		fmt.Fprint(e.cfg.Progress, "\r\033[K")
	}
}
