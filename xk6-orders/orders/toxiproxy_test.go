package orders

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"
)

// TestToxiproxy drives a real toxiproxy server, embedded, through the JS API.
func TestToxiproxy(t *testing.T) {
	api := httptest.NewServer(toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()).Routes())
	defer api.Close()
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	admin := toxiclient.NewClient(api.URL)
	proxy, err := admin.CreateProxy("payments", "127.0.0.1:0", upstream.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proxy.Delete() }()

	v := newTestVU(t)
	v.mustRun(fmt.Sprintf(`var tp = orders.toxiproxy(%q)`, api.URL))
	v.enter()

	dial := func() error {
		c, err := net.DialTimeout("tcp", proxy.Listen, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("proxy not reachable before any fault: %v", err)
	}

	v.mustRun(`tp.disable("payments")`)
	got, err := admin.Proxy("payments")
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled {
		t.Errorf("after disable: proxy enabled")
	}
	if err := dial(); err == nil {
		t.Errorf("after disable: a connection went through")
	}

	v.mustRun(`tp.enable("payments")`)
	if got, _ = admin.Proxy("payments"); !got.Enabled {
		t.Errorf("after enable: proxy disabled")
	}

	name := v.mustRun(`tp.addToxic("payments", "latency", {latency: 300, jitter: 10, toxicity: 0.5, stream: "upstream"})`).String()
	if name != "latency_upstream" {
		t.Errorf("got toxic name %q, want latency_upstream", name)
	}
	toxics, err := proxy.Toxics()
	if err != nil {
		t.Fatal(err)
	}
	if len(toxics) != 1 || toxics[0].Type != "latency" || toxics[0].Stream != "upstream" ||
		toxics[0].Toxicity != 0.5 || toxics[0].Attributes["latency"] != float64(300) {
		t.Errorf("got toxics %+v, want one upstream latency of 300 ms at toxicity 0.5", toxics)
	}
	v.mustRun(`tp.addToxic("payments", "timeout", {name: "hang", timeout: 0})`)
	v.mustRun(`tp.removeToxic("payments", "latency_upstream")`)
	if toxics, _ = proxy.Toxics(); len(toxics) != 1 || toxics[0].Name != "hang" {
		t.Errorf("after removeToxic: got %+v, want only hang", toxics)
	}

	for _, tt := range []struct{ code, want string }{
		{`tp.disable("nope")`, `toxiproxy.disable: proxy "nope"`},
		{`tp.removeToxic("payments", "nope")`, `toxic "nope"`},
	} {
		if _, err := v.run(tt.code); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an exception mentioning %q", tt.code, err, tt.want)
		}
	}
}
