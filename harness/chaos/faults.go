package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/harness/report"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/failpoint"
)

type dlqCheck struct {
	key  string
	from map[int32]kgo.Offset
}

// Env the harness sets on the processes it restarts for a run.
const (
	EnvChargeLatency = "STAMPEDE_PAYMENTS_CHARGE_LATENCY"
	EnvOutageBudget  = "STAMPEDE_OUTAGE_BUDGET"
	relayFailpoint   = "relay.before-publish"
)

// checkTargets fails early, naming what is missing, when a planned fault's
// target is not a component of the stack.
func (e *Experiment) checkTargets() error {
	known := map[string]bool{}
	for _, n := range e.cfg.Stack.Names() {
		known[n] = true
	}
	var missing []string
	for _, p := range e.cfg.Faults {
		switch {
		case Network(p.Kind):
			if err := e.toxics.Check(p.Target); err != nil {
				missing = append(missing, fmt.Sprintf("%s: %v", p.Name, err))
			}
			if !known[p.Target] {
				missing = append(missing, fmt.Sprintf("%s: component %s is not in the stack", p.Name, p.Target))
			}
		case p.Kind == KindKill || p.Kind == KindRestart || p.Kind == KindRelayCrash:
			if !known[p.Target] {
				missing = append(missing, fmt.Sprintf("%s: component %s is not in the stack (have: %s)", p.Name, p.Target, strings.Join(e.cfg.Stack.Names(), ", ")))
			} else if e.cfg.Stack.Pid(p.Target) == 0 {
				missing = append(missing, fmt.Sprintf("%s: component %s is not running (external or stopped): the harness can only break what the stack runs", p.Name, p.Target))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the fault plan cannot run on this stack:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

// prepare restarts components with run-only settings.
func (e *Experiment) prepare(ctx context.Context) error {
	cfg := e.cfg
	if cfg.ChargeLatency > 0 && e.plans(KindKill, "payments") {
		if err := e.restartWith(ctx, "payments", EnvChargeLatency, cfg.ChargeLatency.String()); err != nil {
			return err
		}
	}
	if cfg.OutageBudget > 0 && e.plans(KindOutage, "") {
		for _, n := range cfg.Stack.Names() {
			if strings.HasPrefix(n, "worker-") {
				if err := e.restartWith(ctx, n, EnvOutageBudget, cfg.OutageBudget.String()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (e *Experiment) plans(k Kind, target string) bool {
	for _, p := range e.cfg.Faults {
		if p.Kind == k && (target == "" || p.Target == target) {
			return true
		}
	}
	return false
}

// restartWith restarts name with KEY=VALUE in its environment. Children
// inherit our environment, so it is set around the restart only.
func (e *Experiment) restartWith(ctx context.Context, name, key, value string) error {
	e.mu.Lock()
	e.modified[name] = key + "=" + value
	e.mu.Unlock()
	err := withEnv(key, value, func() error { return e.cfg.Stack.Restart(ctx, name) })
	if err != nil {
		return fmt.Errorf("restart %s with %s=%s: %w", name, key, value, err)
	}
	e.logf("%s restarted with %s=%s for the run", name, key, value)
	return nil
}

// runFaults injects each planned fault at its time, one after the other.
func (e *Experiment) runFaults(ctx context.Context, start time.Time) {
	for i, p := range e.cfg.Faults {
		rec := e.records[i]
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(p.At))):
		}
		e.inject(ctx, p, rec)
	}
}

func (e *Experiment) setActive(name string, on bool) {
	e.mu.Lock()
	e.active[name] = on
	e.mu.Unlock()
}

// inject runs one fault from start to heal and records what happened.
func (e *Experiment) inject(ctx context.Context, p Planned, rec *report.FaultRecord) {
	fail := func(err error) {
		e.mu.Lock()
		if rec.Error == "" {
			rec.Error = err.Error()
		}
		e.mu.Unlock()
		e.logf("fault %s: %v", p.Name, err)
	}
	hold := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(p.Duration):
			return true
		}
	}
	mark := func(start bool) {
		e.mu.Lock()
		if start {
			rec.Start = time.Now()
		} else {
			rec.End = time.Now()
		}
		e.mu.Unlock()
		e.setActive(p.Name, start)
	}
	switch {
	case Network(p.Kind):
		if err := e.toxics.Inject(p.Fault); err != nil {
			fail(err)
			return
		}
		mark(true)
		e.logf("fault %s: %s on proxy %s for %s", p.Name, p.Kind, p.Target, p.Duration)
		hold()
		if err := e.toxics.Clear(p.Fault); err != nil {
			fail(err)
		}
		mark(false)

	case p.Kind == KindKill:
		detail := ""
		if p.Target == "payments" {
			n, ok := e.waitInFlight(ctx, 15*time.Second)
			detail = fmt.Sprintf("charges in flight at the kill: %.1f (Little's law over the last second, from Payments' own request-duration histogram)", n)
			if !ok {
				fail(fmt.Errorf("no charge was in flight within 15 s of the planned kill (estimate %.2f); killed anyway", n))
			}
		}
		e.mu.Lock()
		e.broken[p.Target] = true
		e.mu.Unlock()
		pid, err := e.cfg.Stack.Kill(p.Target, syscall.SIGKILL)
		if err != nil {
			fail(err)
			return
		}
		mark(true)
		e.mu.Lock()
		rec.Detail = strings.TrimSpace(fmt.Sprintf("SIGKILL pid %d. %s", pid, detail))
		e.mu.Unlock()
		e.logf("fault %s: SIGKILL %s (pid %d); %s", p.Name, p.Target, pid, detail)
		hold()
		e.bringBack(ctx, p, rec, fail, mark)

	case p.Kind == KindRestart:
		e.mu.Lock()
		e.broken[p.Target] = true
		e.mu.Unlock()
		pid, err := e.cfg.Stack.Kill(p.Target, syscall.SIGTERM)
		if err != nil {
			fail(err)
			return
		}
		mark(true)
		stopped := e.waitGone(p.Target, 30*time.Second)
		if !stopped {
			e.cfg.Stack.Kill(p.Target, syscall.SIGKILL)
			e.waitGone(p.Target, 10*time.Second)
		}
		e.mu.Lock()
		rec.Detail = fmt.Sprintf("SIGTERM pid %d, stopped in %s", pid, time.Since(rec.Start).Round(100*time.Millisecond))
		e.mu.Unlock()
		e.logf("fault %s: %s stopped", p.Name, p.Target)
		hold()
		e.bringBack(ctx, p, rec, fail, mark)

	case p.Kind == KindDuplicate:
		mark(true)
		orders, err := Duplicate(ctx, e.cfg.Brokers, e.recorder.Recorded(), 10)
		if err != nil {
			fail(err)
		} else {
			e.mu.Lock()
			rec.Detail = fmt.Sprintf("re-produced %d order.created records: %s", len(orders), strings.Join(orders, ", "))
			e.mu.Unlock()
		}
		hold()
		mark(false)

	case p.Kind == KindPoison:
		from, err := EndOffsets(ctx, e.cfg.Brokers, "orders.dlq")
		if err != nil {
			fail(err)
			return
		}
		mark(true)
		key, err := Poison(ctx, e.cfg.Brokers, e.cfg.Topic, e.cfg.Run)
		if err != nil {
			fail(err)
		} else {
			e.mu.Lock()
			e.dlqFrom[p.Name] = dlqCheck{key: key, from: from}
			rec.Detail = "poison record key " + key + " produced to " + e.cfg.Topic
			e.mu.Unlock()
		}
		hold()
		mark(false)

	case p.Kind == KindRelayCrash:
		e.mu.Lock()
		e.broken[p.Target] = true
		e.mu.Unlock()
		mark(true)
		// Restart may report that it died during start: that is the point.
		rerr := withEnv(failpoint.Env, relayFailpoint, func() error { return e.cfg.Stack.Restart(ctx, p.Target) })
		died := e.waitGone(p.Target, p.Duration+10*time.Second)
		e.mu.Lock()
		if died {
			rec.Detail = "relay restarted with " + failpoint.Env + "=" + relayFailpoint + " and died at the failpoint"
		}
		e.mu.Unlock()
		if !died {
			fail(fmt.Errorf("the relay never hit %s (restart: %v)", relayFailpoint, rerr))
			e.cfg.Stack.Kill(p.Target, syscall.SIGKILL)
			e.waitGone(p.Target, 10*time.Second)
		}
		e.bringBack(ctx, p, rec, fail, mark)

	default:
		fail(fmt.Errorf("unknown fault kind %s", p.Kind))
	}
}

// bringBack starts a component we stopped; the fault ends when it is ready.
func (e *Experiment) bringBack(ctx context.Context, p Planned, rec *report.FaultRecord, fail func(error), mark func(bool)) {
	// Even when ctx is cancelled the component must come back: the
	// rollback would do it, but here we know exactly what we broke.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	start := func() error { return e.cfg.Stack.Start(sctx, p.Target) }
	e.mu.Lock()
	kv := e.modified[p.Target]
	e.mu.Unlock()
	if k, v, ok := strings.Cut(kv, "="); ok {
		// It runs with the run's settings until the rollback.
		s := start
		start = func() error { return withEnv(k, v, s) }
	}
	if err := start(); err != nil {
		fail(fmt.Errorf("restart %s: %w", p.Target, err))
	} else {
		e.mu.Lock()
		delete(e.broken, p.Target)
		e.mu.Unlock()
	}
	mark(false)
	e.logf("fault %s: %s back (pid %d)", p.Name, p.Target, e.cfg.Stack.Pid(p.Target))
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

// waitInFlight polls Payments' /metrics until the charges in flight over
// the last second (sum of charge durations completed in it, per second:
// Little's law) reach one half, or max passes.
func (e *Experiment) waitInFlight(ctx context.Context, max time.Duration) (float64, bool) {
	url := "http://" + config.Addr(config.Payments) + "/metrics"
	deadline := time.Now().Add(max)
	prev, prevAt, err := chargeSeconds(ctx, url)
	best := 0.0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		cur, at, cerr := chargeSeconds(ctx, url)
		if err != nil || cerr != nil {
			prev, prevAt, err = cur, at, cerr
			continue
		}
		if at.Sub(prevAt) < 900*time.Millisecond {
			continue
		}
		n := (cur - prev) / at.Sub(prevAt).Seconds()
		if n > best {
			best = n
		}
		if n >= 0.5 {
			return n, true
		}
		prev, prevAt = cur, at
	}
	return best, false
}

// chargeSeconds sums stampede_http_request_duration_seconds_sum over
// Payments' POST charge routes.
func chargeSeconds(ctx context.Context, url string) (float64, time.Time, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer resp.Body.Close()
	at := time.Now()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "stampede_http_request_duration_seconds_sum{") || !strings.Contains(l, `method="POST"`) || !strings.Contains(l, "/v1/charges") || strings.Contains(l, "refunds") {
			continue
		}
		var v float64
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			if _, err := fmt.Sscan(l[i+1:], &v); err == nil {
				sum += v
				found = true
			}
		}
	}
	if !found {
		return 0, at, errors.New("no charge requests in Payments' metrics yet")
	}
	return sum, at, sc.Err()
}

// checkDLQ confirms each poison record reached the dead-letter topic.
func (e *Experiment) checkDLQ(ctx context.Context) {
	for i, p := range e.cfg.Faults {
		c, ok := e.dlqFrom[p.Name]
		if !ok {
			continue
		}
		found, err := FindKey(ctx, e.cfg.Brokers, "orders.dlq", c.from, c.key, 15*time.Second)
		rec := e.records[i]
		switch {
		case err != nil:
			rec.Error = "reading orders.dlq: " + err.Error()
		case !found:
			rec.Error = "the poison record never reached orders.dlq"
		default:
			rec.Detail += "; found in orders.dlq"
		}
	}
}

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
