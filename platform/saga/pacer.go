package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// pacedReserve is what a paced attempt keeps for the call itself: services
// answer in tens of milliseconds, an attempt may take attemptTimeout.
const pacedReserve = time.Second

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
// come later than its budget's end, less a reserve for the call, goes
// without waiting. An attempt whose turn would come after its own attempt
// deadline is turned away with a retryable error (IsPaced) and comes
// back with the step's backoff (an infrastructure-class failure), which
// spreads the backlog further.
type Pacer struct {
	lim *rate.Limiter
}

// NewPacer returns a Pacer of perSecond retries with the given burst; nil
// (no pacing) when perSecond <= 0. A nil *Pacer admits everything.
func NewPacer(perSecond float64, burst int) *Pacer {
	if perSecond <= 0 {
		return nil
	}
	return &Pacer{lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))}
}

// Admit waits for attempt's turn. Attempt 1 passes at once. budgetEnd is
// when the step's outage budget ends (zero: none, as for compensations,
// which retry until done).
func (p *Pacer) Admit(ctx context.Context, attempt int, budgetEnd time.Time) error {
	if p == nil || attempt <= 1 {
		return nil
	}
	now := time.Now()
	r := p.lim.ReserveN(now, 1)
	if !r.OK() {
		return nil // burst < 1 cannot happen (NewPacer), but never block on it
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	if !budgetEnd.IsZero() && now.Add(delay+pacedReserve).After(budgetEnd) {
		// Waiting would eat the budget: go now, unpaced.
		r.CancelAt(now)
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(delay+pacedReserve).After(dl) {
		r.CancelAt(now)
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
