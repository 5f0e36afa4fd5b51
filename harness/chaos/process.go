package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Env the harness sets on the processes it restarts for a run.
const (
	EnvChargeLatency = "STAMPEDE_PAYMENTS_CHARGE_LATENCY"
	EnvOutageBudget  = "STAMPEDE_OUTAGE_BUDGET"
)

// restartWith restarts name with KEY=VALUE in its environment, unless it
// already runs with it for this run. Children inherit our environment, so
// it is set around the restart only; the rollback restarts name without it.
func (e *Experiment) restartWith(ctx context.Context, name, key, value string) error {
	e.mu.Lock()
	already := e.modified[name] == key+"="+value
	e.modified[name] = key + "=" + value
	e.mu.Unlock()
	if already {
		return nil
	}
	err := withEnv(key, value, func() error { return e.cfg.Stack.Restart(ctx, name) })
	if err != nil {
		return fmt.Errorf("restart %s with %s=%s: %w", name, key, value, err)
	}
	e.logf("%s restarted with %s=%s for the run", name, key, value)
	return nil
}

// markBroken records that the run stopped name: the rollback starts it
// unless the fault brought it back.
func (e *Experiment) markBroken(name string) {
	e.mu.Lock()
	e.broken[name] = true
	e.mu.Unlock()
}

// bringBack starts the component the fault stopped, with the run's
// settings when it had any; the fault ends when it is ready.
func (r *faultRun) bringBack(ctx context.Context) error {
	e := r.e
	// Even when ctx is cancelled the component must come back: the
	// rollback would do it, but here we know exactly what we broke.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	start := func() error { return e.cfg.Stack.Start(sctx, r.Target) }
	e.mu.Lock()
	kv := e.modified[r.Target]
	e.mu.Unlock()
	if k, v, ok := strings.Cut(kv, "="); ok {
		// It runs with the run's settings until the rollback.
		s := start
		start = func() error { return withEnv(k, v, s) }
	}
	err := start()
	if err != nil {
		err = fmt.Errorf("restart %s: %w", r.Target, err)
	} else {
		e.mu.Lock()
		delete(e.broken, r.Target)
		e.mu.Unlock()
	}
	e.logf("fault %s: %s back (pid %d)", r.Name, r.Target, e.cfg.Stack.Pid(r.Target))
	return err
}

// envMu serialises changes to the environment children inherit.
var envMu sync.Mutex

// withEnv runs fn with KEY=VALUE in the environment, restoring it after.
func withEnv(key, value string, fn func() error) error {
	envMu.Lock()
	defer envMu.Unlock()
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	defer func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	}()
	return fn()
}

// waitGone waits up to max for name to have no process.
func (e *Experiment) waitGone(name string, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if e.cfg.Stack.Pid(name) == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return e.cfg.Stack.Pid(name) == 0
}
