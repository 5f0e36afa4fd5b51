package orders

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/sobek"
	"github.com/sirupsen/logrus"
	"gopkg.in/guregu/null.v3"

	"go.k6.io/k6/js/modulestest"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/metrics"
)

// testVU is a k6 VU with the module loaded as the global `orders`. It starts
// in the init context; enter() moves it into a scenario iteration.
type testVU struct {
	t       *testing.T
	rt      *modulestest.Runtime
	samples chan metrics.SampleContainer
	iter    uint64
}

func newTestVU(t *testing.T) *testVU {
	t.Helper()
	rt := modulestest.NewRuntime(t)
	mi := New().NewModuleInstance(rt.VU)
	if err := rt.VU.RuntimeField.Set("orders", mi.Exports().Named); err != nil {
		t.Fatal(err)
	}
	return &testVU{t: t, rt: rt, samples: make(chan metrics.SampleContainer, 10000)}
}

func (v *testVU) enter() {
	registry := v.rt.VU.InitEnvField.Registry
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	v.rt.MoveToVUContext(&lib.State{
		Options: lib.Options{
			SystemTags: &metrics.DefaultSystemTagSet,
			UserAgent:  null.StringFrom("xk6-orders-test"),
		},
		Logger:         logger,
		Transport:      http.DefaultTransport.(*http.Transport).Clone(),
		BufferPool:     lib.NewBufferPool(),
		Samples:        v.samples,
		BuiltinMetrics: v.rt.BuiltinMetrics,
		Tags: lib.NewVUStateTags(registry.RootTagSet().WithTagsFromMap(map[string]string{
			"group": lib.RootGroupPath, "scenario": "test",
		})),
		GetScenarioGlobalVUIter: func() uint64 { return v.iter },
	})
}

// run runs code on the VU's event loop, waiting for its promises.
func (v *testVU) run(code string) (sobek.Value, error) {
	return v.rt.RunOnEventLoop(code)
}

func (v *testVU) mustRun(code string) sobek.Value {
	v.t.Helper()
	val, err := v.run(code)
	if err != nil {
		v.t.Fatalf("running %s: %v", code, err)
	}
	return val
}

// drain returns the samples pushed so far.
func (v *testVU) drain() []metrics.Sample {
	var out []metrics.Sample
	for {
		select {
		case c := <-v.samples:
			out = append(out, c.GetSamples()...)
		default:
			return out
		}
	}
}

// count sums the samples of a metric whose tags include want.
func count(samples []metrics.Sample, metric string, want map[string]string) (n int, sum float64) {
	for _, s := range samples {
		if s.Metric.Name != metric {
			continue
		}
		tags := s.Tags.Map()
		ok := true
		for k, v := range want {
			if tags[k] != v {
				ok = false
			}
		}
		if ok {
			n++
			sum += s.Value
		}
	}
	return n, sum
}

func readLedger(t *testing.T, path string) []LedgerLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []LedgerLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l LedgerLine
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestMetricsRegisteredAtInit(t *testing.T) {
	v := newTestVU(t)
	registry := v.rt.VU.InitEnvField.Registry
	for _, c := range []struct {
		name string
		typ  metrics.MetricType
	}{
		{MetricPlaced, metrics.Counter}, {MetricRejected, metrics.Counter}, {MetricUnknown, metrics.Counter},
		{MetricAcceptDuration, metrics.Trend}, {MetricConfirmDuration, metrics.Trend},
	} {
		m := registry.Get(c.name)
		if m == nil {
			t.Errorf("metric %s not registered at init", c.name)
			continue
		}
		if m.Type != c.typ {
			t.Errorf("metric %s is a %v, want %v", c.name, m.Type, c.typ)
		}
	}
}

func TestGenerateFromJS(t *testing.T) {
	v := newTestVU(t)
	v.enter()
	v.iter = 12
	a := v.mustRun(`JSON.stringify(orders.generate({seed: 9, mix: "declined=0.5"}))`).String()
	b := v.mustRun(`JSON.stringify(orders.generate({seed: 9, mix: {declined: 0.5}}))`).String()
	if a != b {
		t.Errorf("same seed and iteration, string and object mix: got\n%s\n%s", a, b)
	}
	explicit := v.mustRun(`JSON.stringify(orders.generate({seed: 9, mix: "declined=0.5", iteration: 12}))`).String()
	if explicit != a {
		t.Errorf("iteration 12 given explicitly differs from the scenario's iteration 12")
	}
	v.iter = 13
	if c := v.mustRun(`JSON.stringify(orders.generate({seed: 9, mix: "declined=0.5"}))`).String(); c == a {
		t.Errorf("iterations 12 and 13 gave the same order %s", c)
	}
	var o map[string]any
	if err := json.Unmarshal([]byte(a), &o); err != nil {
		t.Fatal(err)
	}
	if got, want := o["idempotencyKey"], "test:s9:i12"; got != want {
		t.Errorf("got key %v, want %v", got, want)
	}
	for _, k := range []string{"userId", "currency", "items", "shippingAddress", "payment", "expect", "totalCents"} {
		if _, ok := o[k]; !ok {
			t.Errorf("generated order has no %s: %s", k, a)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		init    bool // run in the init context
		wantErr string
	}{
		{"err/client without baseUrl", `new orders.Client({})`, true, `"baseUrl": required`},
		{"err/client bad baseUrl", `new orders.Client({baseUrl: "ftp://x"})`, true, `option "baseUrl"`},
		{"err/client typo", `new orders.Client({baseURL: "http://x"})`, true, `unknown option "baseURL"`},
		{"err/client timeout", `new orders.Client({baseUrl: "http://x", timeout: "soon"})`, true, `option "timeout"`},
		{"err/client negative poll", `new orders.Client({baseUrl: "http://x", pollInterval: -1})`, true, `option "pollInterval"`},
		{"err/client ledger type", `new orders.Client({baseUrl: "http://x", ledger: 5})`, true, `option "ledger"`},
		{"err/client options not object", `new orders.Client("http://x")`, true, `options must be an object`},
		{"err/generate mix", `orders.generate({mix: "declined=2"})`, false, `option "mix"`},
		{"err/generate mix outcome", `orders.generate({mix: {lost: 0.1}})`, false, `unknown outcome "lost"`},
		{"err/generate users", `orders.generate({users: 0})`, false, `option "users"`},
		{"err/generate seed", `orders.generate({seed: "x"})`, false, `option "seed"`},
		{"err/generate seed fraction", `orders.generate({seed: 1.5})`, false, `option "seed"`},
		{"err/generate zipf", `orders.generate({zipf: -1})`, false, `option "zipf"`},
		{"err/generate unknown", `orders.generate({sede: 1})`, false, `unknown option "sede"`},
		{"err/generate in init needs iteration", `orders.generate({seed: 1})`, true, `option "iteration"`},
		{"err/parseMix", `orders.parseMix("declined=x")`, true, `declined`},
		{"err/place in init", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).place({})`, true, `init context`},
		{"err/place not an order", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).place("o")`, false, `want an order object`},
		{"err/place long key", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).place({idempotencyKey: "k".repeat(256)})`, false, `order.idempotencyKey`},
		{"err/waitFor status", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).waitFor("id", ["shiped"])`, false, `statuses: unknown status shiped`},
		{"err/waitFor no statuses", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).waitFor("id", [])`, false, `statuses: must not be empty`},
		{"err/waitFor no id", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).waitFor("", ["failed"])`, false, `orderId`},
		{"err/waitFor timeout", `new orders.Client({baseUrl: "http://127.0.0.1:1"}).waitFor("id", ["failed"], "later")`, false, `timeout`},
		{"err/toxiproxy url", `orders.toxiproxy("")`, true, `orders.toxiproxy: url`},
		{"err/toxiproxy type", `orders.toxiproxy("http://127.0.0.1:1").addToxic("p", "latencyy", {})`, false, `type: unknown toxic "latencyy"`},
		{"err/toxiproxy attr", `orders.toxiproxy("http://127.0.0.1:1").addToxic("p", "latency", {latency: "1s"})`, false, `attrs.latency`},
		{"err/toxiproxy stream", `orders.toxiproxy("http://127.0.0.1:1").addToxic("p", "latency", {stream: "sideways"})`, false, `attrs.stream`},
		{"err/toxiproxy in init", `orders.toxiproxy("http://127.0.0.1:1").disable("p")`, true, `init context`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVU(t)
			if !tt.init {
				v.enter()
			}
			_, err := v.run(tt.code)
			if err == nil {
				t.Fatalf("got no exception, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got exception %q, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOptionsAccepted(t *testing.T) {
	v := newTestVU(t)
	dir := t.TempDir()
	v.mustRun(`new orders.Client({baseUrl: "http://127.0.0.1:8080/", ledger: "` + filepath.Join(dir, "l.jsonl") + `", timeout: "2s", pollInterval: 100})`)
	v.mustRun(`orders.generate({seed: 1, mix: "", users: 5, skus: 3, zipf: 0, skuZipf: 2, run: "r", iteration: 0})`)
	if _, err := os.Stat(filepath.Join(dir, "l.jsonl")); !os.IsNotExist(err) {
		t.Errorf("the ledger was created at init time (stat: %v); it must open on first use", err)
	}
}
