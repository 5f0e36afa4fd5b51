package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/harness/verify"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/restchain"
)

// PlatformRest is Config.Platform of the REST-chain baseline.
const PlatformRest = verify.PlatformRest

// Fault is one way of breaking the platform, one kind per file
// (faults_<kind>.go, its test beside it). The experiment asks every planned
// fault to Check before the method, then, at the fault's time, to Inject,
// holds it for its duration (less on Ctrl-C), and asks it to Heal.
//
// Inject returns an error only when it broke nothing: the fault then ends
// there, unhealed. Whatever else goes wrong is noted on the fault's record
// (faultRun.fail) and the fault goes on, so that Heal still runs.
type Fault interface {
	// Check says why the fault cannot run on this stack, or nil.
	Check(ctx context.Context) error
	Inject(ctx context.Context) error
	Heal(ctx context.Context) error
}

// Optional extensions of a Fault, found by type assertion.
type (
	// preparer restarts components with run-only settings before the
	// method; the rollback restores them.
	preparer interface {
		Prepare(ctx context.Context) error
	}
	// holder decides itself how long its fault lasts, instead of its
	// planned duration (the relay crash lasts until the relay has died).
	holder interface {
		Hold(ctx context.Context)
	}
	// auditor checks, after the load, what became of what it injected.
	auditor interface {
		Audit(ctx context.Context)
	}
)

// kinds builds the Fault of each kind for one planned fault.
var kinds = map[Kind]func(r *faultRun) Fault{
	KindDisable:    newDisable,
	KindTimeout:    newTimeout,
	KindLatency:    newLatency,
	KindResetPeer:  newResetPeer,
	KindOutage:     newOutage,
	KindKill:       newKill,
	KindRestart:    newRestart,
	KindDuplicate:  newDuplicate,
	KindPoison:     newPoison,
	KindRelayCrash: newRelayCrash,
}

// faultRun is one planned fault of an experiment: what its Fault reads
// (the plan entry, the experiment's stack and clients) and what it records.
type faultRun struct {
	Planned
	e     *Experiment
	rec   *report.FaultRecord
	fault Fault // nil for a kind that does not exist
}

func (e *Experiment) newFaultRun(p Planned, rec *report.FaultRecord) *faultRun {
	r := &faultRun{Planned: p, e: e, rec: rec}
	if newFault, ok := kinds[p.Kind]; ok {
		r.fault = newFault(r)
	}
	return r
}

// started marks the fault injected now.
func (r *faultRun) started() {
	r.e.mu.Lock()
	r.rec.Start = time.Now()
	r.e.active[r.Name] = true
	r.e.mu.Unlock()
}

// ended marks the fault healed now.
func (r *faultRun) ended() {
	r.e.mu.Lock()
	r.rec.End = time.Now()
	r.e.active[r.Name] = false
	r.e.mu.Unlock()
}

// fail notes what went wrong with the fault; the record keeps the first.
func (r *faultRun) fail(err error) {
	r.e.mu.Lock()
	if r.rec.Error == "" {
		r.rec.Error = err.Error()
	}
	r.e.mu.Unlock()
	r.e.logf("fault %s: %v", r.Name, err)
}

// detail says on the record what the fault did.
func (r *faultRun) detail(s string) {
	r.e.mu.Lock()
	r.rec.Detail = s
	r.e.mu.Unlock()
}

// hold waits out the fault's planned duration, or ctx.
func (r *faultRun) hold(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(r.Duration):
	}
}

// run injects the fault, holds it and heals it.
func (r *faultRun) run(ctx context.Context) {
	if r.fault == nil {
		r.fail(fmt.Errorf("unknown fault kind %s", r.Kind))
		return
	}
	if err := r.fault.Inject(ctx); err != nil {
		r.fail(err)
		return
	}
	if h, ok := r.fault.(holder); ok {
		h.Hold(ctx)
	} else {
		r.hold(ctx)
	}
	if err := r.fault.Heal(ctx); err != nil {
		r.fail(err)
	}
	r.ended()
}

// runFaults runs each planned fault at its time. A fault planned to start
// while another still holds (a selftest schedule that overlaps them on
// purpose) runs beside it; the profiles' plans never overlap.
func (e *Experiment) runFaults(ctx context.Context, start time.Time) {
	var wg sync.WaitGroup
	for _, r := range e.faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(r.At))):
			}
			r.run(ctx)
		}()
	}
	wg.Wait()
}

// checkTargets fails early, naming what is missing, when a planned fault
// cannot run on this stack.
func (e *Experiment) checkTargets(ctx context.Context) error {
	var missing []string
	for _, r := range e.faults {
		if r.fault == nil {
			continue
		}
		err := r.fault.Check(ctx)
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, err := range errs {
			if err != nil {
				missing = append(missing, fmt.Sprintf("%s: %v", r.Name, err))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the fault plan cannot run on this stack:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

// prepare arms the run's failpoints and the REST-chain baseline, then lets
// each fault restart components with run-only settings.
func (e *Experiment) prepare(ctx context.Context) error {
	if e.cfg.Platform == PlatformRest {
		if err := e.restartWith(ctx, "orders", restchain.Env, restchain.Mode); err != nil {
			return err
		}
	}
	for _, a := range e.cfg.Arm {
		matched := false
		for _, n := range e.cfg.Stack.Names() {
			if n == a.Component || (strings.HasSuffix(a.Component, "*") && strings.HasPrefix(n, strings.TrimSuffix(a.Component, "*"))) {
				matched = true
				if err := e.restartWith(ctx, n, failpoint.Env, strings.Join(a.Failpoints, ",")); err != nil {
					return err
				}
			}
		}
		if !matched {
			return fmt.Errorf("%w: no component %s in the stack to arm %s in", ErrBadInput, a.Component, strings.Join(a.Failpoints, ","))
		}
	}
	for _, r := range e.faults {
		if p, ok := r.fault.(preparer); ok {
			if err := p.Prepare(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// auditFaults lets each fault check what became of what it injected.
func (e *Experiment) auditFaults(ctx context.Context) {
	for _, r := range e.faults {
		if a, ok := r.fault.(auditor); ok {
			a.Audit(ctx)
		}
	}
}

// checkComponent says why target cannot be broken by the harness: it is not
// a component of the stack, or the stack does not run it.
func (e *Experiment) checkComponent(target string) error {
	names := e.cfg.Stack.Names()
	for _, n := range names {
		if n == target {
			if e.cfg.Stack.Pid(target) == 0 {
				return fmt.Errorf("component %s is not running (external or stopped): the harness can only break what the stack runs", target)
			}
			return nil
		}
	}
	return fmt.Errorf("component %s is not in the stack (have: %s)", target, strings.Join(names, ", "))
}
