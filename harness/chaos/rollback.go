package chaos

import (
	"context"
	"fmt"
	"time"
)

// healNetwork removes every toxic and enables every proxy.
func (e *Experiment) healNetwork() []string {
	healed, err := e.toxics.HealAll()
	if err != nil {
		healed = append(healed, "heal toxiproxy: "+err.Error())
	}
	for i := range healed {
		healed[i] = "toxiproxy " + healed[i]
	}
	return healed
}

// rollback always runs: network healed, every component we stopped started,
// every component restarted with run-only settings restarted without them.
func (e *Experiment) rollback() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := e.healNetwork()
	e.mu.Lock()
	var broken, modified []string
	for n := range e.broken {
		broken = append(broken, n)
	}
	for n := range e.modified {
		modified = append(modified, n)
	}
	e.mu.Unlock()
	for _, n := range broken {
		if e.cfg.Stack.Pid(n) != 0 {
			continue
		}
		if err := e.cfg.Stack.Start(ctx, n); err != nil {
			done = append(done, fmt.Sprintf("start %s: FAILED: %v", n, err))
		} else {
			done = append(done, "started "+n+" (stopped by the run)")
		}
	}
	for _, n := range modified {
		if err := e.cfg.Stack.Restart(ctx, n); err != nil {
			done = append(done, fmt.Sprintf("restart %s without run settings: FAILED: %v", n, err))
		} else {
			done = append(done, "restarted "+n+" without the run's settings")
		}
	}
	for _, d := range done {
		e.logf("rollback: %s", d)
	}
	return done
}
