package chaos

import (
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
	p, err := t.c.Proxy(proxy)
	if err != nil {
		return fmt.Errorf("toxiproxy: proxy %s: %w", proxy, err)
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

// Inject starts a network fault on its target proxy.
func (t *Toxics) Inject(f Fault) error {
	p, err := t.c.Proxy(f.Target)
	if err != nil {
		return fmt.Errorf("toxiproxy: proxy %s: %w", f.Target, err)
	}
	switch f.Kind {
	case KindDisable, KindOutage:
		err = p.Disable()
	case KindTimeout:
		// Upstream: requests are swallowed and the connection stays open, so
		// callers hang until their own timeout. (Downstream would let
		// Payments' connection close turn the hang into an EOF.)
		_, err = p.AddToxic(toxicName(f.Name), "timeout", "upstream", 1, toxiclient.Attributes{"timeout": 0})
	case KindLatency:
		_, err = p.AddToxic(toxicName(f.Name), "latency", "downstream", 1, toxiclient.Attributes{
			"latency": f.Latency.Milliseconds(), "jitter": f.Jitter.Milliseconds()})
	case KindResetPeer:
		// Downstream: reset when the answer arrives, after Payments acted.
		_, err = p.AddToxic(toxicName(f.Name), "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 0})
	default:
		return fmt.Errorf("toxiproxy: fault %s: kind %s is not a network fault", f.Name, f.Kind)
	}
	if err != nil {
		return fmt.Errorf("toxiproxy: inject %s on %s: %w", f.Name, f.Target, err)
	}
	return nil
}

// Clear ends one network fault.
func (t *Toxics) Clear(f Fault) error {
	p, err := t.c.Proxy(f.Target)
	if err != nil {
		return fmt.Errorf("toxiproxy: proxy %s: %w", f.Target, err)
	}
	switch f.Kind {
	case KindDisable, KindOutage:
		err = p.Enable()
	default:
		err = p.RemoveToxic(toxicName(f.Name))
	}
	if err != nil {
		return fmt.Errorf("toxiproxy: clear %s on %s: %w", f.Name, f.Target, err)
	}
	return nil
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

// Network reports whether a fault kind is injected through toxiproxy.
func Network(k Kind) bool {
	switch k {
	case KindDisable, KindTimeout, KindLatency, KindResetPeer, KindOutage:
		return true
	}
	return false
}
