package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/payment"
)

// kill SIGKILLs a component and starts it again after the fault's
// duration. Payments is killed while charges are in flight: for the run it
// is restarted with --charge-latency (Config.ChargeLatency), and the kill
// waits up to 15 s for charges to be in flight.
type kill struct{ r *faultRun }

func newKill(r *faultRun) Fault { return &kill{r} }

func (f *kill) Check(context.Context) error { return f.r.e.checkComponent(f.r.Target) }

func (f *kill) Prepare(ctx context.Context) error {
	e := f.r.e
	if e.cfg.ChargeLatency <= 0 || f.r.Target != "payments" {
		return nil
	}
	return e.restartWith(ctx, "payments", EnvChargeLatency, e.cfg.ChargeLatency.String())
}

func (f *kill) Inject(ctx context.Context) error {
	r, e := f.r, f.r.e
	detail := ""
	if r.Target == "payments" {
		n, ok := e.waitInFlight(ctx, 15*time.Second)
		detail = fmt.Sprintf("charges in flight at the kill: %.1f (Little's law over the last second, from Payments' own request-duration histogram)", n)
		if !ok {
			r.fail(fmt.Errorf("no charge was in flight within 15 s of the planned kill (estimate %.2f); killed anyway", n))
		}
	}
	e.markBroken(r.Target)
	pid, err := e.cfg.Stack.Kill(r.Target, syscall.SIGKILL)
	if err != nil {
		return err
	}
	r.started()
	r.detail(strings.TrimSpace(fmt.Sprintf("SIGKILL pid %d. %s", pid, detail)))
	e.logf("fault %s: SIGKILL %s (pid %d); %s", r.Name, r.Target, pid, detail)
	return nil
}

func (f *kill) Heal(ctx context.Context) error { return f.r.bringBack(ctx) }

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
		if !strings.HasPrefix(l, "stampede_http_request_duration_seconds_sum{") || !strings.Contains(l, `method="POST"`) || !strings.Contains(l, payment.PathCharges) || strings.Contains(l, "refunds") {
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
