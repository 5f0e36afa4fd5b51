package saga

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pacedReserve is what a paced attempt keeps for the call itself: services
// answer in tens of milliseconds, an attempt may take attemptTimeout.
const pacedReserve = time.Second

// budgetReserve is what pacing leaves of a step's outage budget for its
// call: a whole attempt. With pacedReserve alone, a retry in the full
// profile waited its turn to 1 s before its budget's end, while Payments,
// back for 1 s and draining the refusal's backlog, took longer than that
// to answer; the step failed after 6 s of outage in a 10 s budget.
const budgetReserve = attemptTimeout

// Pacer bounds how fast one worker resumes forward steps that already
// failed (compensations are not paced: they have a 30 s deadline of their
// own). When a service comes back after an outage, every saga that
// waited for it retries within its current backoff: with no bound, that is
// seconds' worth of orders finishing their sagas at once, and the burst of
// work they cause (service calls, Kafka, Temporal task completions) starves
// order intake, whose workflow starts then stall and whose consumer lag
// climbs. With a Pacer, retries take a token from a bucket of Rate per
// second; first attempts (new orders) never wait, so intake keeps its
// latency while the backlog drains at a known rate.
//
// Pacing never costs a step its outage budget: an attempt whose turn would
// come later than its budget's end, less a whole attempt for the call
// (budgetReserve), goes without waiting. An attempt whose turn would come after its own attempt
// deadline is turned away with a retryable error (IsPaced) and comes
// back with the step's backoff (an infrastructure-class failure), which
// spreads the backlog further; unless that backoff would bring it back too
// late in its budget for a call, when it goes now (a saga turned away twice
// after Payments had come back once failed for want of a try).
//
// With a saga budget (WithSagaBudget), the retry rate follows the load: new
// sagas (Arrived) are counted over the last arrivalWindow, and retries get
// what they leave of the budget, never less than the floor rate. At a peak
// the backlog drains at the floor; once the peak passes it drains at up to
// the budget. A fixed rate drained at the same speed through the peak, and
// so added its work to the peak's (in a short chaos run, half the seconds
// over the lag gate fell where the peak and the drain met). New sagas are
// counted, not every step's first attempt: an outage stops the steps after
// it, and counting those would have freed the budget for retries exactly
// while the backlog grew.
type Pacer struct {
	lim   *rate.Limiter
	floor float64 // retries per second at the least

	mu       sync.Mutex
	budget   float64     // sagas per second in all, new and resumed; 0: retries at floor
	arrivals []time.Time // new sagas within arrivalWindow, oldest first
}

// arrivalWindow is how far back new sagas count towards the load.
const arrivalWindow = 2 * time.Second

// NewPacer returns a Pacer of perSecond retries with the given burst; nil
// (no pacing) when perSecond <= 0. A nil *Pacer admits everything.
func NewPacer(perSecond float64, burst int) *Pacer {
	if perSecond <= 0 {
		return nil
	}
	return &Pacer{lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1)), floor: perSecond}
}

// WithSagaBudget makes the retry rate what perSecond sagas leave after the
// new sagas of the last two seconds, at least the Pacer's own rate (its
// floor). perSecond <= 0 keeps the fixed rate.
func (p *Pacer) WithSagaBudget(perSecond float64) *Pacer {
	if p != nil {
		p.mu.Lock()
		p.budget = max(perSecond, 0)
		p.mu.Unlock()
	}
	return p
}

// Arrived counts a new saga (its first step's first attempt) towards the
// load the saga budget leaves retries.
func (p *Pacer) Arrived() {
	if p == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.budget > 0 {
		p.rateLocked(now) // forgets what fell out of the window
		p.arrivals = append(p.arrivals, now)
	}
}

// Rate is the retry rate the Pacer applies now.
func (p *Pacer) Rate() float64 {
	if p == nil {
		return 0 // no pacing
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rateLocked(time.Now())
}

// rateLocked forgets arrivals older than arrivalWindow and returns the
// retry rate at now.
func (p *Pacer) rateLocked(now time.Time) float64 {
	if p.budget <= 0 {
		return p.floor
	}
	i := 0
	for i < len(p.arrivals) && now.Sub(p.arrivals[i]) > arrivalWindow {
		i++
	}
	p.arrivals = p.arrivals[i:]
	return max(p.floor, p.budget-float64(len(p.arrivals))/arrivalWindow.Seconds())
}

// Admit waits for attempt's turn. Attempt 1 passes at once. budgetEnd is
// when the step's outage budget ends (zero: none, as for compensations,
// which retry until done).
func (p *Pacer) Admit(ctx context.Context, attempt int, budgetEnd time.Time) error {
	if p == nil || attempt <= 1 {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	if lim := rate.Limit(p.rateLocked(now)); lim != p.lim.Limit() {
		p.lim.SetLimitAt(now, lim)
	}
	p.mu.Unlock()
	r := p.lim.ReserveN(now, 1)
	if !r.OK() {
		return nil // burst < 1 cannot happen (NewPacer), but never block on it
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	if !budgetEnd.IsZero() && now.Add(delay+budgetReserve).After(budgetEnd) {
		// Waiting would eat the budget: go now, unpaced.
		r.CancelAt(now)
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(delay+pacedReserve).After(dl) {
		r.CancelAt(now)
		if !budgetEnd.IsZero() && now.Add(retryBackoff(attempt)+budgetReserve).After(budgetEnd) {
			// Turned away, its next try would come too late in the budget
			// for a call, or never (the SDK gives a step up once its next
			// backoff would end past the budget): go now, unpaced.
			return nil
		}
		return pacedError(delay)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

func pacedError(wait time.Duration) error {
	return &pacedErr{wait: wait}
}

type pacedErr struct{ wait time.Duration }

func (e *pacedErr) Error() string {
	return fmt.Sprintf("paced: this retry's turn is %s away; retrying later so that resumed sagas do not starve new orders", e.wait.Round(time.Millisecond))
}

// IsPaced reports whether err is an attempt the Pacer turned away.
func IsPaced(err error) bool {
	var p *pacedErr
	return errors.As(err, &p)
}
