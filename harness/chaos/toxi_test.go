package chaos

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// realToxiproxy runs the toxiproxy server in the test, on loopback, with a
// proxy "payments" in front of an upstream answering "ok". It returns the
// API address and the proxy's URL.
func realToxiproxy(t *testing.T) (api, proxyURL string) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(upstream.Close)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "payments", "127.0.0.1:0", strings.TrimPrefix(upstream.URL, "http://"))
	if err := srv.Collection.Add(p, true); err != nil {
		t.Fatalf("create proxy: %v", err)
	}
	t.Cleanup(func() { srv.Collection.Clear() })
	apiSrv := httptest.NewServer(srv.Routes())
	t.Cleanup(apiSrv.Close)
	return strings.TrimPrefix(apiSrv.URL, "http://"), "http://" + p.Listen
}

// get makes a request on a fresh connection (no keep-alive: every call meets
// the proxy's current state) with a bounded timeout.
func get(url string, timeout time.Duration) (string, time.Duration, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return "", time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), time.Since(start), err
}

// breakPath runs a network fault on the test proxy: Check passes before it
// and fails during it, want says what is wrong with what a caller sees
// during it ("" when as expected), and after Heal the path answers again.
func breakPath(t *testing.T, spec Spec, want func(body string, took time.Duration, err error) string) {
	t.Helper()
	api, url := realToxiproxy(t)
	_, r := oneFault(Config{ToxiproxyAddr: api, Stack: newFakeStack("payments")}, spec)
	ctx := context.Background()
	if err := r.fault.Check(ctx); err != nil {
		t.Fatalf("check before: %v", err)
	}
	if err := r.fault.Inject(ctx); err != nil {
		t.Fatalf("inject: %v", err)
	}
	if r.record().Start.IsZero() {
		t.Errorf("inject did not mark the fault started")
	}
	if err := r.fault.Check(ctx); err == nil {
		t.Errorf("check during the fault: got nil, want an error naming the fault")
	}
	body, took, err := get(url, time.Second)
	if msg := want(body, took, err); msg != "" {
		t.Errorf("during the fault: %s", msg)
	}
	if err := r.fault.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if body, _, err := get(url, 2*time.Second); err != nil || body != "ok" {
		t.Errorf("after heal: got %q, %v; want ok", body, err)
	}
}

func TestToxics(t *testing.T) {
	api, url := realToxiproxy(t)
	tx := NewToxics(api)
	if err := tx.Check("payments"); err != nil {
		t.Fatalf("check before: %v", err)
	}
	if body, _, err := get(url, 2*time.Second); err != nil || body != "ok" {
		t.Fatalf("baseline: got %q, %v; want ok", body, err)
	}

	t.Run("heal_all/normal", func(t *testing.T) {
		e := New(Config{ToxiproxyAddr: api, Stack: newFakeStack("payments"), Faults: []Planned{
			{Spec: Spec{Name: "a", Kind: KindLatency, Target: "payments", Latency: time.Second}},
			{Spec: Spec{Name: "b", Kind: KindTimeout, Target: "payments"}},
			{Spec: Spec{Name: "c", Kind: KindDisable, Target: "payments"}},
		}})
		for _, r := range e.faults {
			if err := r.fault.Inject(context.Background()); err != nil {
				t.Fatalf("inject %s: %v", r.Name, err)
			}
		}
		healed, err := tx.HealAll()
		if err != nil {
			t.Fatalf("heal: %v", err)
		}
		if len(healed) != 3 {
			t.Errorf("healed %v, want 2 toxics removed and the proxy enabled", healed)
		}
		if err := tx.Check("payments"); err != nil {
			t.Errorf("check after heal: %v", err)
		}
		if body, took, err := get(url, 2*time.Second); err != nil || body != "ok" || took > 500*time.Millisecond {
			t.Errorf("after heal: got %q, %v in %s; want ok at once", body, err, took)
		}
	})

	t.Run("err/unknown proxy", func(t *testing.T) {
		if err := tx.Check("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("got %v, want an error naming the proxy", err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
