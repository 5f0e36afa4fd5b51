package chaos

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// restart stops a component (SIGTERM; SIGKILL when it has not stopped
// within 30 s) and starts it again after the fault's duration.
type restart struct{ r *faultRun }

func newRestart(r *faultRun) Fault { return &restart{r} }

func (f *restart) Check(context.Context) error { return f.r.e.checkComponent(f.r.Target) }

func (f *restart) Inject(context.Context) error {
	r, e := f.r, f.r.e
	e.markBroken(r.Target)
	pid, err := e.cfg.Stack.Kill(r.Target, syscall.SIGTERM)
	if err != nil {
		return err
	}
	r.started()
	stopped := e.waitGone(r.Target, 30*time.Second)
	if !stopped {
		e.cfg.Stack.Kill(r.Target, syscall.SIGKILL)
		e.waitGone(r.Target, 10*time.Second)
	}
	e.mu.Lock()
	r.rec.Detail = fmt.Sprintf("SIGTERM pid %d, stopped in %s", pid, time.Since(r.rec.Start).Round(100*time.Millisecond))
	e.mu.Unlock()
	e.logf("fault %s: %s stopped", r.Name, r.Target)
	return nil
}

func (f *restart) Heal(ctx context.Context) error { return f.r.bringBack(ctx) }
