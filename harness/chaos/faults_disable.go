package chaos

import (
	"context"
	"fmt"
)

// disable turns the target's proxy off: every connection is refused until
// it is enabled again.
type disable struct{ r *faultRun }

func newDisable(r *faultRun) Fault { return &disable{r} }

func (f *disable) Check(context.Context) error { return f.r.checkProxy() }

func (f *disable) Inject(context.Context) error {
	p, err := f.r.e.toxics.proxy(f.r.Target)
	if err != nil {
		return err
	}
	if err := p.Disable(); err != nil {
		return fmt.Errorf("toxiproxy: inject %s on %s: %w", f.r.Name, f.r.Target, err)
	}
	f.r.injected()
	return nil
}

func (f *disable) Heal(context.Context) error {
	p, err := f.r.e.toxics.proxy(f.r.Target)
	if err != nil {
		return err
	}
	if err := p.Enable(); err != nil {
		return fmt.Errorf("toxiproxy: clear %s on %s: %w", f.r.Name, f.r.Target, err)
	}
	return nil
}
