package chaos

import (
	"context"
	"fmt"
	"strings"
)

// duplicate produces again up to ten order.created records seen on the
// orders topic during the run: none may start a second saga.
type duplicate struct{ r *faultRun }

func newDuplicate(r *faultRun) Fault { return &duplicate{r} }

func (f *duplicate) Check(context.Context) error { return nil }

func (f *duplicate) Inject(ctx context.Context) error {
	r, e := f.r, f.r.e
	r.started()
	orders, err := Duplicate(ctx, e.cfg.Brokers, e.recorder.Recorded(), 10)
	if err != nil {
		r.fail(err)
		return nil
	}
	r.detail(fmt.Sprintf("re-produced %d order.created records: %s", len(orders), strings.Join(orders, ", ")))
	return nil
}

func (f *duplicate) Heal(context.Context) error { return nil }
