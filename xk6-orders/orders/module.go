// Package orders is the k6 module k6/x/orders: a deterministic generator of
// realistic orders, a client for the Stampede Orders API that records every
// placement in a JSONL ledger and in order-level metrics, and a small
// toxiproxy wrapper so scripts can schedule their own faults.
//
// It talks to the platform over HTTP only and must never import the
// platform's Go module (nor the Temporal server it links).
package orders

import (
	"fmt"
	"sync"

	"github.com/grafana/sobek"

	"go.k6.io/k6/js/common"
	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/metrics"
)

// Metric names. Thresholds on them are accepted because they are
// registered when a VU instantiates the module, before the test starts.
const (
	MetricPlaced          = "orders_placed"
	MetricRejected        = "orders_rejected"
	MetricUnknown         = "orders_unknown"
	MetricAcceptDuration  = "order_accept_duration"
	MetricConfirmDuration = "order_confirm_duration"
)

// RootModule is shared by every VU of the process: it owns what must be
// shared (the open ledgers, the popularity tables).
type RootModule struct {
	ledgers ledgers

	mu    sync.Mutex
	zipfs map[zipfKey]*zipf
}

type zipfKey struct {
	n int
	s float64
}

// ModuleInstance is the module as one VU sees it.
type ModuleInstance struct {
	root    *RootModule
	vu      modules.VU
	metrics *orderMetrics
}

var (
	_ modules.Module   = &RootModule{}
	_ modules.Instance = &ModuleInstance{}
)

// New returns the root module.
func New() *RootModule {
	return &RootModule{zipfs: map[zipfKey]*zipf{}}
}

// orderMetrics are the custom metrics the module emits.
type orderMetrics struct {
	placed, rejected, unknown *metrics.Metric
	accept, confirm           *metrics.Metric
}

func registerMetrics(r *metrics.Registry) (*orderMetrics, error) {
	var (
		m   orderMetrics
		err error
	)
	for _, d := range []struct {
		dst  **metrics.Metric
		name string
		typ  metrics.MetricType
		vt   metrics.ValueType
	}{
		{&m.placed, MetricPlaced, metrics.Counter, metrics.Default},
		{&m.rejected, MetricRejected, metrics.Counter, metrics.Default},
		{&m.unknown, MetricUnknown, metrics.Counter, metrics.Default},
		{&m.accept, MetricAcceptDuration, metrics.Trend, metrics.Time},
		{&m.confirm, MetricConfirmDuration, metrics.Trend, metrics.Time},
	} {
		if *d.dst, err = r.NewMetric(d.name, d.typ, d.vt); err != nil {
			return nil, fmt.Errorf("register metric %s: %w", d.name, err)
		}
	}
	return &m, nil
}

// NewModuleInstance registers the metrics (init time) and returns the
// VU's instance.
func (r *RootModule) NewModuleInstance(vu modules.VU) modules.Instance {
	env := vu.InitEnv()
	if env == nil {
		common.Throw(vu.Runtime(), fmt.Errorf("k6/x/orders must be imported in the init context"))
	}
	m, err := registerMetrics(env.Registry)
	if err != nil {
		common.Throw(vu.Runtime(), err)
	}
	return &ModuleInstance{root: r, vu: vu, metrics: m}
}

// Exports is the JS API: generate, Client, toxiproxy, parseMix.
func (mi *ModuleInstance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		"generate":  mi.generate,
		"Client":    mi.newClient,
		"toxiproxy": mi.toxiproxy,
		"parseMix":  mi.parseMix,
		"statuses":  append([]string(nil), Statuses...),
	}}
}

func (r *RootModule) zipf(n int, s float64) *zipf {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := zipfKey{n, s}
	z, ok := r.zipfs[k]
	if !ok {
		z = newZipf(n, s)
		r.zipfs[k] = z
	}
	return z
}

// generate is orders.generate({seed, mix, users, skus, zipf, skuZipf, run, iteration}).
func (mi *ModuleInstance) generate(v sobek.Value) (*sobek.Object, error) {
	o, err := newOptions("orders.generate", v,
		"seed", "mix", "users", "skus", "zipf", "skuZipf", "run", "iteration")
	if err != nil {
		return nil, err
	}
	cfg := GenConfig{}
	if cfg.Seed, err = o.integer("seed", 1, -(1 << 53), 1<<53); err != nil {
		return nil, err
	}
	if cfg.Mix, err = o.mix("mix"); err != nil {
		return nil, err
	}
	users, err := o.integer("users", 10000, 1, 10_000_000)
	if err != nil {
		return nil, err
	}
	skus, err := o.integer("skus", 1000, 1, 99_999)
	if err != nil {
		return nil, err
	}
	cfg.Users, cfg.SKUs = int(users), int(skus)
	if cfg.UserZipf, err = o.number("zipf", 1.1); err != nil {
		return nil, err
	}
	if cfg.SKUZipf, err = o.number("skuZipf", 0.9); err != nil {
		return nil, err
	}
	for _, z := range []struct {
		name string
		v    float64
	}{{"zipf", cfg.UserZipf}, {"skuZipf", cfg.SKUZipf}} {
		if z.v < 0 || z.v > 10 {
			return nil, o.errorf(z.name, "want an exponent between 0 (uniform) and 10, got %v", z.v)
		}
	}
	if cfg.Run, err = o.str("run", ""); err != nil {
		return nil, err
	}
	if len(cfg.Run) > 100 {
		return nil, o.errorf("run", "at most 100 characters, so idempotency keys stay under 255")
	}

	var iteration uint64
	state := mi.vu.State()
	switch {
	case o.has("iteration"):
		it, err := o.integer("iteration", 0, 0, 1<<53)
		if err != nil {
			return nil, err
		}
		iteration = uint64(it) //nolint:gosec // checked non-negative
	case state != nil && state.GetScenarioGlobalVUIter != nil:
		iteration = state.GetScenarioGlobalVUIter()
	default:
		return nil, o.errorf("iteration", "required outside a scenario iteration (init context, setup, teardown)")
	}
	if state != nil {
		if s, ok := state.Tags.GetCurrentValues().Tags.Get("scenario"); ok {
			cfg.Scenario = s
		}
	}
	g := NewGenerator(cfg, mi.root.zipf(cfg.Users, cfg.UserZipf), mi.root.zipf(cfg.SKUs, cfg.SKUZipf))
	return g.Order(iteration).toJS(mi.vu.Runtime()), nil
}

// mix reads the option name as a "declined=0.05,..." string or an object.
func (o *options) mix(name string) (Mix, error) {
	if !o.has(name) {
		return Mix{}, nil
	}
	var (
		m   Mix
		err error
	)
	switch v := o.values[name].(type) {
	case string:
		m, err = ParseMix(v)
	case map[string]any:
		m, err = mixFromObject(v)
	default:
		return Mix{}, o.errorf(name, "want a string like \"declined=0.05,out_of_stock=0.02\" or an object, got %s", describe(v))
	}
	if err != nil {
		return Mix{}, o.errorf(name, "%v", err)
	}
	return m, nil
}

// parseMix is orders.parseMix("declined=0.05,..."): the shares as an
// object, so a script can check MIX before the test starts.
func (mi *ModuleInstance) parseMix(s string) (map[string]any, error) {
	m, err := ParseMix(s)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		ExpectDeclined:      m.Declined,
		ExpectOutOfStock:    m.OutOfStock,
		ExpectUndeliverable: m.Undeliverable,
		ExpectComplete:      1 - m.Declined - m.OutOfStock - m.Undeliverable,
	}, nil
}
