package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// Toxics is the fault injector for network faults: it drives a toxiproxy
// server through its HTTP API.
type Toxics struct {
	c *toxiclient.Client
}

// NewToxics returns an injector for the toxiproxy API at addr (host:port).
func NewToxics(addr string) *Toxics {
	return &Toxics{c: toxiclient.NewClient(addr)}
}

// toxicName is the name the harness gives its toxics, so Heal can tell them apart.
func toxicName(fault string) string { return "chaos-" + fault }

// Check returns an error unless the proxy exists and is enabled with no toxics.
func (t *Toxics) Check(proxy string) error {
	p, err := t.proxy(proxy)
	if err != nil {
		return err
	}
	if !p.Enabled {
		return fmt.Errorf("toxiproxy: proxy %s is disabled", proxy)
	}
	if len(p.ActiveToxics) > 0 {
		var n []string
		for _, x := range p.ActiveToxics {
			n = append(n, x.Name)
		}
		return fmt.Errorf("toxiproxy: proxy %s has toxics: %s", proxy, strings.Join(n, ", "))
	}
	return nil
}

// proxy returns the proxy named name.
func (t *Toxics) proxy(name string) (*toxiclient.Proxy, error) {
	p, err := t.c.Proxy(name)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy: proxy %s: %w", name, err)
	}
	return p, nil
}

// HealAll is the rollback: every proxy enabled, every toxic removed (ours
// or not: a run must end with a clean path). It returns what it healed.
func (t *Toxics) HealAll() ([]string, error) {
	proxies, err := t.c.Proxies()
	if err != nil {
		return nil, fmt.Errorf("toxiproxy: list proxies: %w", err)
	}
	var healed []string
	var errs []error
	for name, p := range proxies {
		for _, x := range p.ActiveToxics {
			if err := p.RemoveToxic(x.Name); err != nil {
				errs = append(errs, fmt.Errorf("remove toxic %s of %s: %w", x.Name, name, err))
				continue
			}
			healed = append(healed, name+": toxic "+x.Name+" removed")
		}
		if !p.Enabled {
			if err := p.Enable(); err != nil {
				errs = append(errs, fmt.Errorf("enable %s: %w", name, err))
				continue
			}
			healed = append(healed, name+": enabled")
		}
	}
	return healed, errors.Join(errs...)
}

// checkProxy says why a network fault cannot run: its proxy is missing or
// not clean, or its target is not a component of the stack.
func (r *faultRun) checkProxy() error {
	var errs []error
	if err := r.e.toxics.Check(r.Target); err != nil {
		errs = append(errs, err)
	}
	known := false
	for _, n := range r.e.cfg.Stack.Names() {
		known = known || n == r.Target
	}
	if !known {
		errs = append(errs, fmt.Errorf("component %s is not in the stack", r.Target))
	}
	return errors.Join(errs...)
}

// injected marks a network fault started and says so.
func (r *faultRun) injected() {
	r.started()
	r.e.logf("fault %s: %s on proxy %s for %s", r.Name, r.Kind, r.Target, r.Duration)
}

// toxicFault is a network fault made of one toxic on its target's proxy;
// each kind says which toxic (faults_timeout.go, faults_latency.go, ...).
type toxicFault struct {
	r      *faultRun
	toxic  string // toxiproxy's type
	stream string // upstream (requests) or downstream (answers)
	attrs  toxiclient.Attributes
}

func (f *toxicFault) Check(context.Context) error { return f.r.checkProxy() }

func (f *toxicFault) Inject(context.Context) error {
	p, err := f.r.e.toxics.proxy(f.r.Target)
	if err != nil {
		return err
	}
	if _, err := p.AddToxic(toxicName(f.r.Name), f.toxic, f.stream, 1, f.attrs); err != nil {
		return fmt.Errorf("toxiproxy: inject %s on %s: %w", f.r.Name, f.r.Target, err)
	}
	f.r.injected()
	return nil
}

func (f *toxicFault) Heal(context.Context) error {
	p, err := f.r.e.toxics.proxy(f.r.Target)
	if err != nil {
		return err
	}
	if err := p.RemoveToxic(toxicName(f.r.Name)); err != nil {
		return fmt.Errorf("toxiproxy: clear %s on %s: %w", f.r.Name, f.r.Target, err)
	}
	return nil
}
