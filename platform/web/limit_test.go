package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// blockingStore stands for a frozen PostgreSQL: every call waits until its
// context ends, then returns the context's error, as pgx does.
type blockingStore struct{}

func (blockingStore) Get(ctx context.Context) error {
	<-ctx.Done()
	return fmt.Errorf("get order: %w", ctx.Err())
}

// A store that never answers gives the client a 503 with Retry-After at the
// request's deadline, not a request left hanging.
func TestFrozenStoreIs503AtTheDeadline(t *testing.T) {
	mux := http.NewServeMux()
	store := blockingStore{}
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := store.Get(r.Context()); err != nil {
			WriteError(w, r, slog.New(slog.DiscardHandler), err)
		}
	})
	m := NewMetrics(prometheus.NewRegistry(), "test")
	h := Middleware(Limit(mux, Limits{Timeout: 150 * time.Millisecond}, m), slog.New(slog.DiscardHandler), m)

	start := time.Now()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/v1/things/1", nil))
	took := time.Since(start)
	if rr.Code != http.StatusServiceUnavailable || rr.Header().Get("Retry-After") != "1" {
		t.Fatalf("got %d Retry-After %q (%s), want 503 with Retry-After 1", rr.Code, rr.Header().Get("Retry-After"), rr.Body)
	}
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("answered after %s, want at the 150 ms deadline", took)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Errorf("body %q: want an error saying why", rr.Body)
	}
}

// Beyond MaxInFlight a request is turned away at once with 503 and
// Retry-After; health and metrics are still answered; a slot freed is used.
func TestMaxInFlightSheds(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusAccepted)
	})
	HandleHealth(mux, nil)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	h := Middleware(Limit(mux, Limits{MaxInFlight: 2}, m), slog.New(slog.DiscardHandler), m)

	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/v1/things", nil))
			codes[i] = rr.Code
		}()
	}
	<-entered
	<-entered

	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/v1/things", nil))
	if rr.Code != http.StatusServiceUnavailable || rr.Header().Get("Retry-After") == "" {
		t.Fatalf("third request: %d Retry-After %q, want 503 with Retry-After", rr.Code, rr.Header().Get("Retry-After"))
	}
	for _, path := range []string{PathHealth, PathReady, "/metrics"} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
		if rr.Code != http.StatusOK {
			t.Errorf("GET %s while full: %d, want 200", path, rr.Code)
		}
	}
	if got := counterValue(t, reg, "stampede_http_requests_shed_total"); got != 1 {
		t.Errorf("shed counter = %v, want 1", got)
	}
	close(release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusAccepted {
			t.Errorf("request %d in flight: %d, want 202", i, c)
		}
	}
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/v1/things", nil))
	if rr.Code != http.StatusAccepted {
		t.Errorf("after the slots were freed: %d, want 202", rr.Code)
	}
}

// A client trickling its body (slow loris) is answered 408 naming the body
// at the request's deadline, over a real connection.
func TestSlowBodyIs408AtTheDeadline(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) {
		if _, err := ReadJSONBody(r, 1<<20); err != nil {
			WriteError(w, r, nil, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	m := NewMetrics(prometheus.NewRegistry(), "test")
	srv := httptest.NewServer(Middleware(Limit(mux, Limits{Timeout: 300 * time.Millisecond}, m), slog.New(slog.DiscardHandler), m))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100 ms: never done within the deadline
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"field":"body"`) {
		t.Fatalf("got %d %s, want 408 naming body", resp.StatusCode, b)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("answered after %s, want about the 300 ms deadline", took)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    Limits
		ok   bool
	}{
		{"ok/defaults", Limits{MaxInFlight: DefaultMaxInFlight, Timeout: DefaultRequestTimeout}, true},
		{"ok/off", Limits{}, true},
		{"err/negative cap", Limits{MaxInFlight: -1}, false},
		{"err/negative timeout", Limits{Timeout: -time.Second}, false},
	} {
		if err := tt.l.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}

// counterValue is the value of the one counter called name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// Over a real connection a GET (no body: net/http reads the connection in
// the background and cancels the request's context when that read fails)
// still gets its 503 at the deadline, never a 500.
func TestFrozenStoreIs503OverAConnection(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := (blockingStore{}).Get(r.Context()); err != nil {
			WriteError(w, r, slog.New(slog.DiscardHandler), err)
		}
	})
	srv := httptest.NewServer(Middleware(Limit(mux, Limits{Timeout: 100 * time.Millisecond}, nil), slog.New(slog.DiscardHandler), nil))
	defer srv.Close()
	for i := range 5 {
		resp, err := http.Get(srv.URL + "/v1/things/1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET %d: %d, want 503", i, resp.StatusCode)
		}
	}
}
