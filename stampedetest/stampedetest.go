// Package stampedetest starts the Stampede platform in containers from a Go
// test, as httptest starts an HTTP server: Kafka (KRaft), PostgreSQL, Redis,
// Temporal with its Web UI, toxiproxy and every Stampede process, each in its
// own container on one network, published on 127.0.0.1 only. Start waits
// until every part answers, returns where to reach it, and removes it all
// when the test ends.
//
//	func TestCheckout(t *testing.T) {
//		st := stampedetest.Start(context.Background(), t)
//		resp, err := http.Post(st.OrdersURL+"/v1/orders", "application/json", strings.NewReader(order))
//		...
//	}
//
// It needs a container engine (Docker, or Podman's Docker API: DOCKER_HOST)
// and the images `make images` (stampede images build) makes; without an
// engine the test is skipped, saying what is missing.
//
// It is its own Go module so that the platform's unit tests never build
// testcontainers. It must never publish a port beyond 127.0.0.1, and never
// pull an image: the defaults are built locally.
package stampedetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
)

// Stack is a running platform: where each part answers from the test (all
// on 127.0.0.1), and its containers. Fields of parts not started are empty.
type Stack struct {
	OrdersURL string // POST /v1/orders, GET /v1/orders/{id} (platform/order/openapi.yaml)
	// ServiceToken is the bearer (Authorization: Bearer ServiceToken) the
	// internal services take, and the Orders API for reading any order:
	// random per Start. Placing an order needs none.
	ServiceToken     string
	InventoryURL     string
	PaymentsURL      string // Payments itself; the workers reach it through toxiproxy
	ShippingURL      string // POST /v1/shipments/{id}/deliver delivers an order
	NotificationsURL string

	Brokers         []string // Kafka seed brokers
	TemporalAddress string   // frontend host:port, namespace "default"
	TemporalUIURL   string
	PostgresURL     string // database stampede, user postgres
	RedisURL        string

	ToxiproxyURL string
	// Toxiproxy drives the toxiproxy in front of Payments: proxy "payments"
	// carries every call the saga workers make to it.
	Toxiproxy *toxiclient.Client

	// Network is the container network; inside it the parts are postgres,
	// redis, kafka, temporal, toxiproxy, orders, inventory, payments, ...
	Network string

	mu         sync.Mutex
	containers map[string]testcontainers.Container
}

// Container returns the container of name (postgres, kafka, orders,
// worker-1, ...), or nil.
func (s *Stack) Container(name string) testcontainers.Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containers[name]
}

// Names lists the containers Start made, sorted.
func (s *Stack) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.containers {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (s *Stack) add(name string, c testcontainers.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers[name] = c
}

// EnvRequireContainers set to 1 makes a missing engine fail, not skip.
const EnvRequireContainers = "STAMPEDE_REQUIRE_CONTAINERS"

// Start runs the platform (or the parts WithParts names) and returns it once
// every part is ready; t.Cleanup removes every container, and the network
// when Start made it. It fails the test, naming the part and the cause, when
// something does not start; it skips it when no container engine answers
// (fails, with RequireEngine or STAMPEDE_REQUIRE_CONTAINERS=1).
func Start(ctx context.Context, t testing.TB, opts ...Option) *Stack {
	t.Helper()
	st, err := start(ctx, t, opts...)
	var noEngine *EngineError
	switch {
	case errors.As(err, &noEngine) && !noEngine.required:
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
	return st
}

// EngineError says no container engine answered, and how to give it one.
type EngineError struct {
	Err      error
	required bool
}

func (e *EngineError) Error() string {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unset"
	}
	return fmt.Sprintf("stampedetest: no container engine answers (DOCKER_HOST %s): %v\n"+
		"Start Docker, or Podman's Docker API and point DOCKER_HOST at it:\n"+
		"  podman system service --time=0 unix:///tmp/podman.sock &\n"+
		"  export DOCKER_HOST=unix:///tmp/podman.sock TESTCONTAINERS_RYUK_DISABLED=true", host, e.Err)
}

func (e *EngineError) Unwrap() error { return e.Err }

func start(ctx context.Context, t testing.TB, opts ...Option) (*Stack, error) {
	s := defaults()
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	if os.Getenv(EnvRequireContainers) == "1" {
		s.requireEngine = true
	}
	s.resolve()
	began := time.Now()

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := preflight(ctx, &s); err != nil {
		return nil, err
	}

	st := &Stack{containers: map[string]testcontainers.Container{}, ServiceToken: randomToken()}
	st.Network = s.network
	if st.Network == "" {
		nw, err := network.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("stampedetest: create a network: %w", err)
		}
		t.Cleanup(func() {
			if err := nw.Remove(context.Background()); err != nil {
				t.Logf("stampedetest: remove network %s: %v", nw.Name, err)
			}
		})
		st.Network = nw.Name
	}
	r := &runner{t: t, s: &s, st: st}

	// Infrastructure first, side by side: its parts do not need each other.
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range []struct {
		part Part
		run  func(context.Context) error
	}{
		{Postgres, r.postgres},
		{Redis, r.redis},
		{Kafka, r.kafka},
		{Temporal, r.temporal},
		{Toxiproxy, r.toxiproxy},
	} {
		if s.parts[p.part] {
			g.Go(func() error { return r.timed(string(p.part), func() error { return p.run(gctx) }) })
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if s.parts[Platform] {
		if err := r.platform(ctx); err != nil {
			return nil, err
		}
	}
	t.Logf("stampedetest: ready in %s: %s", time.Since(began).Round(100*time.Millisecond), st.summary())
	return st, nil
}

func (st *Stack) summary() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	add("orders", st.OrdersURL)
	add("kafka", strings.Join(st.Brokers, ","))
	add("temporal", st.TemporalAddress)
	add("temporal-ui", st.TemporalUIURL)
	add("postgres", st.PostgresURL)
	add("redis", st.RedisURL)
	add("toxiproxy", st.ToxiproxyURL)
	return strings.Join(parts, ", ")
}

// hostPorts are the fixed host ports WithHostPorts asks for, by container
// name and container port.
func (s *settings) hostPort(name string, containerPort int) int {
	if s.portOffset == 0 {
		return 0
	}
	base := map[string]int{
		"postgres": config.DefaultPorts[config.Postgres], "redis": config.DefaultPorts[config.Redis],
		"kafka": config.DefaultPorts[config.Kafka], "temporal": config.DefaultPorts[config.Temporal],
		"toxiproxy": config.DefaultPorts[config.Toxiproxy],
	}
	switch {
	case name == "temporal" && containerPort == 8233:
		return config.DefaultPorts[config.TemporalUI] + s.portOffset
	case name == "toxiproxy" && containerPort == 18082:
		return config.DefaultPorts[config.PaymentsProxy] + s.portOffset
	}
	if p, ok := base[name]; ok {
		return p + s.portOffset
	}
	// The Stampede processes listen on their default port in their own
	// container; members of one kind (worker-2, ...) take the next ones.
	if kind, n, ok := strings.Cut(name, "-"); ok {
		i, _ := strconv.Atoi(n)
		return config.DefaultPorts[kind] + i - 1 + s.portOffset
	}
	return containerPort + s.portOffset
}

// preflight finds what would otherwise fail late or hang: no engine, an
// image not built, a fixed port taken.
func preflight(ctx context.Context, s *settings) error {
	if s.portOffset > 0 {
		for _, p := range s.fixedPorts() {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
			if err != nil {
				return fmt.Errorf("stampedetest: host port %d (%s) on 127.0.0.1 is taken: %v; pick another WithHostPorts offset", p.port, p.what, err)
			}
			l.Close()
		}
	}
	cli, err := engine(ctx)
	if err != nil {
		return &EngineError{Err: err, required: s.requireEngine}
	}
	defer cli.Close()
	// Every port is published on 127.0.0.1, so that is where testcontainers'
	// wait strategies must look. Left to itself, a test process that runs in
	// a container (as CI jobs often do) would look at the bridge's gateway.
	// Process-wide, but harmless: its other containers publish there too.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		if err := imagePresent(ctx, cli, ryukImage); err != nil {
			return fmt.Errorf("stampedetest: testcontainers' reaper (Ryuk) is on and its image %s is not here (%v): "+
				"pull it where a registry is reachable, or set TESTCONTAINERS_RYUK_DISABLED=true (Start removes its containers with t.Cleanup)", ryukImage, err)
		}
	}
	need := map[string]bool{}
	for p := range s.parts {
		switch p {
		case Postgres, Redis, Kafka, Temporal:
			need[string(p)] = true
		case Toxiproxy, Platform:
			need["stampede"] = true
		}
	}
	for name := range need {
		if err := imagePresent(ctx, cli, s.images[name]); err != nil {
			return fmt.Errorf("stampedetest: image %s (%s) is not built here: run `make images` (stampede images build) first, or pass WithImage(%q, ...): %v",
				s.images[name], name, name, err)
		}
	}
	return nil
}

type fixedPort struct {
	port int
	what string
}

// fixedPorts lists every host port WithHostPorts would publish.
func (s *settings) fixedPorts() []fixedPort {
	var out []fixedPort
	add := func(name string, ports ...int) {
		for _, p := range ports {
			out = append(out, fixedPort{s.hostPort(name, p), fmt.Sprintf("%s:%d", name, p)})
		}
	}
	if s.parts[Postgres] {
		add("postgres", 5432)
	}
	if s.parts[Redis] {
		add("redis", 6379)
	}
	if s.parts[Kafka] {
		add("kafka", kafkaPublicPort)
	}
	if s.parts[Temporal] {
		add("temporal", 7233, 8233)
	}
	if s.parts[Toxiproxy] {
		add("toxiproxy", 8474, 18082)
	}
	if s.parts[Platform] {
		for _, p := range s.processes() {
			add(p.name, p.port)
		}
	}
	return out
}

// timed runs fn and names part in its error.
func (r *runner) timed(part string, fn func() error) error {
	t0 := time.Now()
	if err := fn(); err != nil {
		return fmt.Errorf("stampedetest: start %s: %w", part, err)
	}
	r.t.Logf("stampedetest: %s ready in %s", part, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// tail returns the last n lines of a container's log.
func tail(ctx context.Context, c testcontainers.Container, n int) string {
	rc, err := c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 600 { // a Go stack trace in one JSON log line
			lines[i] = l[:600] + " ..."
		}
	}
	return strings.Join(lines, "\n")
}
