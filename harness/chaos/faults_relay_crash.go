package chaos

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/platform/failpoint"
)

// relayFailpoint makes the relay die between its DB commit and its publish.
const relayFailpoint = "relay.before-publish"

// relayCrash restarts the relay armed with relayFailpoint, so it dies with
// rows committed and not yet published; the fault lasts until it has died
// (at most its duration and 10 s), then the relay is started clean.
type relayCrash struct {
	r   *faultRun
	err error // what the armed restart said: it may report the death
}

func newRelayCrash(r *faultRun) Fault { return &relayCrash{r: r} }

func (f *relayCrash) Check(context.Context) error { return f.r.e.checkComponent(f.r.Target) }

func (f *relayCrash) Inject(ctx context.Context) error {
	r, e := f.r, f.r.e
	e.markBroken(r.Target)
	r.started()
	// Restart may report that it died during start: that is the point.
	// With the run's own settings (a mutation's failpoints) and this one.
	env := withFailpoint(e.runEnv(r.Target), relayFailpoint)
	f.err = withEnvs(env, func() error { return e.cfg.Stack.Restart(ctx, r.Target) })
	return nil
}

// Hold waits for the relay to die at the failpoint, and kills it if it does not.
func (f *relayCrash) Hold(context.Context) {
	r, e := f.r, f.r.e
	if e.waitGone(r.Target, r.Duration+10*time.Second) {
		r.detail("relay restarted with " + failpoint.Env + "=" + relayFailpoint + " and died at the failpoint")
		return
	}
	r.fail(fmt.Errorf("the relay never hit %s (restart: %v)", relayFailpoint, f.err))
	e.cfg.Stack.Kill(r.Target, syscall.SIGKILL)
	e.waitGone(r.Target, 10*time.Second)
}

func (f *relayCrash) Heal(ctx context.Context) error { return f.r.bringBack(ctx) }
