package chaos

import (
	"context"
	"strings"
)

// outage is a disable that outlasts the workers' outage budget, so the
// orders caught in it fail and are compensated. For the run the workers are
// restarted with --outage-budget (Config.OutageBudget), shorter than the fault.
type outage struct{ disable }

func newOutage(r *faultRun) Fault { return &outage{disable{r}} }

func (f *outage) Prepare(ctx context.Context) error {
	e := f.r.e
	if e.cfg.OutageBudget <= 0 {
		return nil
	}
	for _, n := range e.cfg.Stack.Names() {
		if strings.HasPrefix(n, "worker-") {
			if err := e.restartWith(ctx, n, EnvOutageBudget, e.cfg.OutageBudget.String()); err != nil {
				return err
			}
		}
	}
	return nil
}
