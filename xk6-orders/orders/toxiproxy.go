package orders

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/grafana/sobek"

	"go.k6.io/k6/js/modules"
)

// ToxicTypes are the toxics toxiproxy 2.x knows; checked here so a typo is
// an exception naming it rather than a 400 from the server.
var ToxicTypes = []string{"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"}

// Toxiproxy lets a script schedule its own faults on a toxiproxy server.
// Its calls are synchronous HTTP calls, allowed outside the init context.
type Toxiproxy struct {
	vu     modules.VU
	client *toxiclient.Client
}

// toxiproxy is orders.toxiproxy(url).
func (mi *ModuleInstance) toxiproxy(v sobek.Value) (*Toxiproxy, error) {
	const where = "orders.toxiproxy"
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return nil, fmt.Errorf("%s: url: required, e.g. \"http://127.0.0.1:8474\"", where)
	}
	s, ok := v.Export().(string)
	if !ok {
		return nil, fmt.Errorf("%s: url: want a string, got %s", where, describe(v.Export()))
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: url: want an http(s) URL like \"http://127.0.0.1:8474\", got %q", where, s)
	}
	return &Toxiproxy{vu: mi.vu, client: toxiclient.NewClient(strings.TrimRight(s, "/"))}, nil
}

func (t *Toxiproxy) proxy(where, name string) (*toxiclient.Proxy, error) {
	if t.vu.State() == nil {
		return nil, fmt.Errorf("%s: not allowed in the init context", where)
	}
	if name == "" {
		return nil, fmt.Errorf("%s: proxy name: must not be empty", where)
	}
	p, err := t.client.Proxy(name)
	if err != nil {
		return nil, fmt.Errorf("%s: proxy %q: %w", where, name, err)
	}
	return p, nil
}

// Disable makes the proxy refuse connections and drops open ones.
func (t *Toxiproxy) Disable(name string) error {
	p, err := t.proxy("toxiproxy.disable", name)
	if err != nil {
		return err
	}
	if err := p.Disable(); err != nil {
		return fmt.Errorf("toxiproxy.disable: proxy %q: %w", name, err)
	}
	return nil
}

// Enable lets connections through the proxy again.
func (t *Toxiproxy) Enable(name string) error {
	p, err := t.proxy("toxiproxy.enable", name)
	if err != nil {
		return err
	}
	if err := p.Enable(); err != nil {
		return fmt.Errorf("toxiproxy.enable: proxy %q: %w", name, err)
	}
	return nil
}

// AddToxic adds a toxic of type typ to the proxy and returns its name.
// attrs holds the toxic's attributes (e.g. {latency: 500, jitter: 50})
// and optionally name, stream ("downstream" or "upstream") and toxicity (0..1).
func (t *Toxiproxy) AddToxic(proxyName, typ string, attrs sobek.Value) (string, error) {
	const where = "toxiproxy.addToxic"
	if !slices.Contains(ToxicTypes, typ) {
		return "", fmt.Errorf("%s: type: unknown toxic %q (known: %s)", where, typ, strings.Join(ToxicTypes, ", "))
	}
	var obj map[string]any
	if attrs != nil && !sobek.IsUndefined(attrs) && !sobek.IsNull(attrs) {
		var ok bool
		if obj, ok = attrs.Export().(map[string]any); !ok {
			return "", fmt.Errorf("%s: attrs: want an object, got %s", where, describe(attrs.Export()))
		}
	}
	name, stream, toxicity := "", "downstream", float32(1)
	a := toxiclient.Attributes{}
	for k, v := range obj {
		switch k {
		case "name":
			s, ok := v.(string)
			if !ok || s == "" {
				return "", fmt.Errorf("%s: attrs.name: want a non-empty string, got %s", where, describe(v))
			}
			name = s
		case "stream":
			s, ok := v.(string)
			if !ok || (s != "downstream" && s != "upstream") {
				return "", fmt.Errorf("%s: attrs.stream: want \"downstream\" or \"upstream\", got %s", where, describe(v))
			}
			stream = s
		case "toxicity":
			f, ok := toFloat(v)
			if !ok || f < 0 || f > 1 {
				return "", fmt.Errorf("%s: attrs.toxicity: want a number between 0 and 1, got %s", where, describe(v))
			}
			toxicity = float32(f)
		default:
			if _, ok := toFloat(v); !ok {
				return "", fmt.Errorf("%s: attrs.%s: want a number, got %s", where, k, describe(v))
			}
			a[k] = v
		}
	}
	if name == "" {
		name = typ + "_" + stream
	}
	p, err := t.proxy(where, proxyName)
	if err != nil {
		return "", err
	}
	toxic, err := p.AddToxic(name, typ, stream, toxicity, a)
	if err != nil {
		return "", fmt.Errorf("%s: proxy %q: %w", where, proxyName, err)
	}
	return toxic.Name, nil
}

// RemoveToxic removes the named toxic from the proxy.
func (t *Toxiproxy) RemoveToxic(proxyName, toxic string) error {
	const where = "toxiproxy.removeToxic"
	if toxic == "" {
		return errors.New(where + ": toxic: must not be empty")
	}
	p, err := t.proxy(where, proxyName)
	if err != nil {
		return err
	}
	if err := p.RemoveToxic(toxic); err != nil {
		return fmt.Errorf("%s: proxy %q, toxic %q: %w", where, proxyName, toxic, err)
	}
	return nil
}
