package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/web"
)

func TestJudge(t *testing.T) {
	c := probeCase{wantCode: 400, wantField: "userId"}
	const js = "application/json"
	tests := []struct {
		name  string
		c     probeCase
		code  int
		ctype string
		body  string
		ok    bool
		why   string
	}{
		{"ok/the refusal wanted", c, 400, js, `{"error":"must not contain control characters","field":"userId"}`, true, ""},
		{"ok/any 4xx, no field wanted", probeCase{}, 431, "text/plain", "431 Request Header Fields Too Large", true, ""},
		{"err/5xx", c, 500, js, `{"error":"internal error"}`, false, "a server error for bad input"},
		{"err/503", c, 503, js, `{"error":"busy"}`, false, "a server error for bad input"},
		{"err/accepted", c, 202, js, `{"orderId":"x"}`, false, "hostile input accepted"},
		{"err/another 4xx", c, 422, js, `{"error":"x","field":"userId"}`, false, "want 400"},
		{"err/another field", c, 400, js, `{"error":"x","field":"currency"}`, false, "want a JSON error naming userId"},
		{"err/no field", c, 400, js, `{"error":"x"}`, false, "want a JSON error naming userId"},
		{"err/not JSON", c, 400, "text/plain", `400 Bad Request`, false, "want a JSON error naming userId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := judge(tt.c, tt.code, tt.ctype, []byte(tt.body))
			if r.ok != tt.ok || r.why != tt.why {
				t.Fatalf("judge = %+v, want ok %v why %q", r, tt.ok, tt.why)
			}
		})
	}
}

// run reports a hang, an empty reply and a server error as such, and reads
// an answer that comes before the request was all sent.
func TestProbeRunSeesHangsAndEmptyReplies(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hang", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	})
	mux.HandleFunc("POST /empty", func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	})
	mux.HandleFunc("POST /boom", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		if _, err := web.ReadJSONBody(r, 1<<20); err != nil {
			web.WriteError(w, r, nil, err)
		}
	})
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(web.Middleware(web.Limit(mux, web.Limits{Timeout: 300 * time.Millisecond}, nil), log, nil))
	defer srv.Close()
	defer close(release) // before Close, which waits for the hanging handler
	p := &prober{urls: probeURLs{orders: srv.URL}, timeout: 2 * time.Second}
	for _, tt := range []struct {
		path, status, why string
		slow, ok          bool
	}{
		{"/hang", "no answer in 2s", "hang", false, false},
		{"/empty", "empty reply", "the connection closed without an answer", false, false},
		{"/boom", "500", "a server error for bad input", false, false},
		{"/slow", "408 body", "", true, true},
	} {
		t.Run(tt.path, func(t *testing.T) {
			c := probeCase{service: "orders", method: http.MethodPost, path: tt.path, body: []byte(`{"a":1}`), ctype: "application/json",
				slow: tt.slow, wantCode: http.StatusRequestTimeout, wantField: "body"}
			r := p.run(c)
			if r.ok != tt.ok || r.status != tt.status || r.why != tt.why {
				t.Fatalf("run = %+v, want status %q ok %v why %q", r, tt.status, tt.ok, tt.why)
			}
		})
	}
}

// A stack that answers bad input with 5xx fails the probe (exit 1); bad
// usage is exit 2.
func TestProbeExitStatus(t *testing.T) {
	t.Setenv("STAMPEDE_HOME", t.TempDir())
	t.Setenv("STAMPEDE_SERVICE_TOKEN", "")
	if err := runProbe(context.Background(), []string{"--quiet"}); !errors.As(err, new(exitCoder)) {
		t.Errorf("runProbe without a service token = %v, want exit status 2", err)
	}
	t.Setenv("STAMPEDE_SERVICE_TOKEN", "probe-test-token-probe-test-token-0123")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	args := []string{"--quiet", "--timeout", "3s", "--wait", "1s", "--orders-url", srv.URL, "--inventory-url", srv.URL,
		"--payments-url", srv.URL, "--shipping-url", srv.URL, "--notifications-url", srv.URL}
	err := runProbe(context.Background(), args)
	var ec exitCoder
	if err == nil || errors.As(err, &ec) || !strings.Contains(err.Error(), "checks failed") {
		t.Fatalf("runProbe against a failing stack = %v, want a plain error (exit 1) counting the failures", err)
	}
	for _, bad := range [][]string{{"extra"}, {"--timeout", "0s"}, {"--orders-url", "ftp://x"}, {"--nope"}} {
		err := runProbe(context.Background(), bad)
		if !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Errorf("runProbe(%q) = %v, want exit status 2", bad, err)
		}
	}
}

// Every case is refused by a server that refuses everything the way the
// services do: the cases' wanted answers are consistent with each other and
// each is checked (a probe that accepts everything would prove nothing).
func TestProbeCasesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range probeCases() {
		if seen[c.name] {
			t.Errorf("case %q listed twice", c.name)
		}
		seen[c.name] = true
		if c.wantCode < 400 || c.wantCode >= 500 {
			t.Errorf("%s: wants %d, not a 4xx", c.name, c.wantCode)
		}
		if c.method == http.MethodPost && c.path == "/v1/orders" && c.wantField == "" && c.wantCode != 431 && !strings.Contains(c.name, "NUL in X-Correlation-ID") {
			t.Errorf("%s: an Orders refusal must name its field", c.name)
		}
	}
	if len(seen) < 20 {
		t.Errorf("%d cases, want the issue's list (at least 20)", len(seen))
	}
}
