package chaos

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
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

func TestToxicsAgainstRealToxiproxy(t *testing.T) {
	api, url := realToxiproxy(t)
	tx := NewToxics(api)
	if err := tx.Check("payments"); err != nil {
		t.Fatalf("check before: %v", err)
	}
	if body, _, err := get(url, 2*time.Second); err != nil || body != "ok" {
		t.Fatalf("baseline: got %q, %v; want ok", body, err)
	}

	cases := []struct {
		name  string
		fault Fault
		want  func(body string, took time.Duration, err error) string // "" when as expected
	}{
		{"disable/refused", Fault{Name: "refused", Kind: KindDisable, Target: "payments"},
			func(_ string, _ time.Duration, err error) string {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					return "want connection refused, got " + errString(err)
				}
				return ""
			}},
		{"timeout/hang", Fault{Name: "hang", Kind: KindTimeout, Target: "payments"},
			func(_ string, took time.Duration, err error) string {
				var ne interface{ Timeout() bool }
				if !errors.As(err, &ne) || !ne.Timeout() || took < 700*time.Millisecond {
					return "want the request to hang until the client timeout, got " + errString(err) + " after " + took.String()
				}
				return ""
			}},
		{"latency/delayed", Fault{Name: "slow", Kind: KindLatency, Target: "payments", Latency: 400 * time.Millisecond, Jitter: 50 * time.Millisecond},
			func(body string, took time.Duration, err error) string {
				if err != nil || body != "ok" || took < 340*time.Millisecond {
					return "want ok after at least 350 ms, got " + body + " " + errString(err) + " after " + took.String()
				}
				return ""
			}},
		{"reset_peer/reset", Fault{Name: "reset", Kind: KindResetPeer, Target: "payments"},
			func(_ string, _ time.Duration, err error) string {
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return "want connection reset, got " + errString(err)
				}
				return ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tx.Inject(tc.fault); err != nil {
				t.Fatalf("inject: %v", err)
			}
			if err := tx.Check("payments"); err == nil {
				t.Errorf("check during the fault: got nil, want an error naming the fault")
			}
			body, took, err := get(url, time.Second)
			if msg := tc.want(body, took, err); msg != "" {
				t.Errorf("%s", msg)
			}
			if err := tx.Clear(tc.fault); err != nil {
				t.Fatalf("clear: %v", err)
			}
			if body, _, err := get(url, 2*time.Second); err != nil || body != "ok" {
				t.Errorf("after clear: got %q, %v; want ok", body, err)
			}
		})
	}

	t.Run("heal_all/normal", func(t *testing.T) {
		for _, f := range []Fault{
			{Name: "a", Kind: KindLatency, Target: "payments", Latency: time.Second},
			{Name: "b", Kind: KindTimeout, Target: "payments"},
			{Name: "c", Kind: KindDisable, Target: "payments"},
		} {
			if err := tx.Inject(f); err != nil {
				t.Fatalf("inject %s: %v", f.Name, err)
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
		if err := tx.Inject(Fault{Name: "x", Kind: KindDisable, Target: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
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
