package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.temporal.io/server/common/headers"
)

// A database file's writes go through one lock (writelock.go), and in a
// burst they queue for it: after a Payments outage every waiting saga
// resumes at once, each step a write of its workflow's mutable state, and a
// workflow start (the orchestrators' CreateWorkflowExecution, which their
// consumer lag waits on) queued behind all of them. So the lock serves
// waiters by the call they belong to, as Temporal's own persistence rate
// limiter ranks requests (headers.CallerInfo, which the server carries in
// the context down to the store): a write for a call of the order intake (a
// workflow start, a signal: what the orchestrators send) goes before the
// sagas' own progress (workflow and activity task completions, the history
// service's background queues). Each class is served first come, first
// served. The intake asks at most a few dozen writes a second, so the rest
// is delayed by at most that, never starved.
//
// STAMPEDE_TEMPORAL_WRITE_PRIORITY=0 serves every waiter in arrival order.

// EnvWritePriority is the environment variable that turns the intake's
// priority at the write lock off ("0").
const EnvWritePriority = "STAMPEDE_TEMPORAL_WRITE_PRIORITY"

// intakeCalls are the API calls whose writes go first.
var intakeCalls = map[string]bool{
	"StartWorkflowExecution":           true,
	"SignalWithStartWorkflowExecution": true,
	"SignalWorkflowExecution":          true,
	"ExecuteMultiOperation":            true,
}

const (
	intake = iota // a write for a call of intakeCalls
	rest
	classes
)

// classOf is the class of the write ctx belongs to, and its call's name
// (empty for the history service's background work).
func classOf(ctx context.Context) (int, string) {
	origin := headers.GetCallerInfo(ctx).CallOrigin
	if intakeCalls[origin] {
		return intake, origin
	}
	return rest, origin
}

// writeLock is one file's write lock: one holder at a time.
type writeLock struct {
	file string

	mu       sync.Mutex
	held     bool
	waiting  [classes][]chan struct{} // each class in arrival order
	ordered  bool                     // serve intake first (EnvWritePriority)
	acquired time.Time                // by the holder
	origin   string                   // the holder's call
	stats    lockStats
}

// lock waits for the lock, as the class of ctx's call, until ctx ends.
func (l *writeLock) lock(ctx context.Context) error {
	class, origin := classOf(ctx)
	start := time.Now()
	l.mu.Lock()
	if !l.held {
		l.held = true
		l.took(class, origin, start, start)
		l.mu.Unlock()
		return nil
	}
	queue := class
	if !writePriority {
		queue = rest // one queue: arrival order
	}
	ch := make(chan struct{})
	l.waiting[queue] = append(l.waiting[queue], ch)
	l.mu.Unlock()

	select {
	case <-ch:
		l.mu.Lock()
		l.took(class, origin, start, time.Now())
		l.mu.Unlock()
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		if l.dequeue(queue, ch) {
			l.mu.Unlock()
			return ctx.Err()
		}
		// Handed the lock as ctx ended: pass it on.
		l.took(class, origin, start, time.Now())
		l.mu.Unlock()
		l.unlock()
		return ctx.Err()
	}
}

// unlock gives the lock to the first waiter of the first class that has
// one, or frees it.
func (l *writeLock) unlock() {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.held(now.Sub(l.acquired), l.origin)
	for c := range l.waiting {
		if q := l.waiting[c]; len(q) > 0 {
			ch := q[0]
			copy(q, q[1:])
			l.waiting[c] = q[:len(q)-1]
			close(ch) // the lock stays held, by the waiter now
			return
		}
	}
	l.held = false
}

// dequeue removes ch from its class's queue; false when it was no longer
// there (the lock was handed to it).
func (l *writeLock) dequeue(class int, ch chan struct{}) bool {
	q := l.waiting[class]
	for i, w := range q {
		if w == ch {
			l.waiting[class] = append(q[:i], q[i+1:]...)
			return true
		}
	}
	return false
}

// took records that a waiter of class took the lock at now (l.mu held).
func (l *writeLock) took(class int, origin string, asked, now time.Time) {
	l.acquired, l.origin = now, origin
	l.stats.waited(l.file, class, now.Sub(asked), origin, now)
}

// writePriority is EnvWritePriority read at start.
var writePriority = os.Getenv(EnvWritePriority) != "0"

// lockLog, when set (main does), gets a line for each second in which a
// write waited for the lock lockReportOver or longer.
var (
	lockLog        *slog.Logger
	lockReportOver = 20 * time.Millisecond
)

// lockStats sums one second of a lock's waits and holds.
type lockStats struct {
	second           time.Time // the one summed
	n                [classes]int
	waitSum, waitMax [classes]time.Duration
	waitMaxOrigin    [classes]string
	heldSum, heldMax time.Duration
	heldMaxOrigin    string
}

func (s *lockStats) waited(file string, class int, d time.Duration, origin string, now time.Time) {
	if sec := now.Truncate(time.Second); !sec.Equal(s.second) {
		s.report(file)
		*s = lockStats{second: sec}
	}
	s.n[class]++
	s.waitSum[class] += d
	if d > s.waitMax[class] {
		s.waitMax[class], s.waitMaxOrigin[class] = d, origin
	}
}

func (s *lockStats) held(d time.Duration, origin string) {
	s.heldSum += d
	if d > s.heldMax {
		s.heldMax, s.heldMaxOrigin = d, origin
	}
}

// report logs the second summed if a write waited lockReportOver or more.
func (s *lockStats) report(file string) {
	if lockLog == nil || s.second.IsZero() || max(s.waitMax[intake], s.waitMax[rest]) < lockReportOver {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	lockLog.Info("slow write lock", "file", file, "second", s.second.Format(time.TimeOnly), "priority", writePriority,
		"intake_writes", s.n[intake], "intake_wait_ms", ms(s.waitSum[intake]), "intake_wait_max_ms", ms(s.waitMax[intake]), "intake_wait_max_call", s.waitMaxOrigin[intake],
		"other_writes", s.n[rest], "other_wait_ms", ms(s.waitSum[rest]), "other_wait_max_ms", ms(s.waitMax[rest]), "other_wait_max_call", s.waitMaxOrigin[rest],
		"held_ms", ms(s.heldSum), "held_max_ms", ms(s.heldMax), "held_max_call", s.heldMaxOrigin)
}
