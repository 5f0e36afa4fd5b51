package chaos

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stampede-dev/stampede/platform/failpoint"
)

// Env the harness sets on the processes it restarts for a run.
const (
	EnvChargeLatency = "STAMPEDE_PAYMENTS_CHARGE_LATENCY"
	EnvOutageBudget  = "STAMPEDE_OUTAGE_BUDGET"
)

// restartWith restarts name with KEY=VALUE added to what it runs with for
// the run, unless it already runs with it. Children inherit our
// environment, so it is set around the restart only; the rollback restarts
// name without any of it.
func (e *Experiment) restartWith(ctx context.Context, name, key, value string) error {
	e.mu.Lock()
	env := e.modified[name]
	already := env != nil && env[key] == value
	if !already {
		if env == nil {
			env = map[string]string{}
			e.modified[name] = env
		}
		env[key] = value
	}
	env = maps.Clone(env)
	e.mu.Unlock()
	if already {
		return nil
	}
	err := withEnvs(env, func() error { return e.cfg.Stack.Restart(ctx, name) })
	if err != nil {
		return fmt.Errorf("restart %s with %s: %w", name, envString(env), err)
	}
	e.logf("%s restarted with %s for the run", name, envString(env))
	return nil
}

// runEnv is what name runs with for the run (nil: its own settings).
func (e *Experiment) runEnv(name string) map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.modified[name])
}

// withFailpoint adds a failpoint to the run's STAMPEDE_FAILPOINTS of env.
func withFailpoint(env map[string]string, name string) map[string]string {
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	if v := out[failpoint.Env]; v != "" {
		out[failpoint.Env] = v + "," + name
	} else {
		out[failpoint.Env] = name
	}
	return out
}

func envString(env map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		parts = append(parts, k+"="+env[k])
	}
	return strings.Join(parts, " ")
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
	// It runs with the run's settings until the rollback.
	env := e.runEnv(r.Target)
	err := withEnvs(env, func() error { return e.cfg.Stack.Start(sctx, r.Target) })
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

// withEnvs runs fn with env added to the environment, restoring it after.
func withEnvs(env map[string]string, fn func() error) error {
	envMu.Lock()
	defer envMu.Unlock()
	for k, v := range env {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
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
