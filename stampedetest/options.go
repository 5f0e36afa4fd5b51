package stampedetest

import (
	"fmt"
	"maps"
	"time"

	"github.com/stampede-dev/stampede/harness/images"
)

// Part is a piece of the platform Start can run.
type Part string

// The parts. Platform is every Stampede process (Orders, Inventory, Payments,
// Shipping, Notifications, analytics, the outbox relay, orchestrators, saga
// workers); it needs all the others, and asking for it starts them too.
const (
	Postgres  Part = "postgres"
	Redis     Part = "redis"
	Kafka     Part = "kafka"
	Temporal  Part = "temporal"
	Toxiproxy Part = "toxiproxy"
	Platform  Part = "platform"
)

var allParts = []Part{Postgres, Redis, Kafka, Temporal, Toxiproxy, Platform}

// settings is what the options set.
type settings struct {
	parts         map[Part]bool
	network       string // an existing network to join; "" creates one
	images        map[string]string
	env           map[string]string
	workers       int
	orchestrators int
	portOffset    int // > 0: fixed host ports (default + offset) instead of ephemeral ones
	timeout       time.Duration
	requireEngine bool
}

func defaults() settings {
	s := settings{
		parts:         map[Part]bool{},
		images:        map[string]string{},
		env:           map[string]string{},
		workers:       1,
		orchestrators: 1,
		timeout:       4 * time.Minute,
	}
	for _, im := range images.All {
		s.images[im.Name] = im.Ref
	}
	return s
}

// Option changes what Start runs.
type Option func(*settings) error

// WithParts starts only the parts named (and what they need: Platform brings
// every other part). Without it Start runs everything.
func WithParts(parts ...Part) Option {
	return func(s *settings) error {
		for _, p := range parts {
			known := false
			for _, q := range allParts {
				known = known || p == q
			}
			if !known {
				return fmt.Errorf("stampedetest: WithParts: unknown part %q (known: %v)", p, allParts)
			}
			s.parts[p] = true
		}
		return nil
	}
}

// WithNetwork attaches every container to an existing network (created
// elsewhere, e.g. with testcontainers' network.New) instead of a new one, so
// containers of your own on it reach the platform by name: postgres:5432,
// redis:6379, kafka:9092, temporal:7233, orders:8080, ... Start leaves the
// network in place. One network holds one Stampede stack.
func WithNetwork(name string) Option {
	return func(s *settings) error {
		if name == "" {
			return fmt.Errorf("stampedetest: WithNetwork: empty network name")
		}
		s.network = name
		return nil
	}
}

// WithImage replaces the image of one part: "postgres", "redis", "kafka"
// (any image with the entrypoint layout of confluentinc/confluent-local),
// "temporal" or "stampede" (every Stampede process and toxiproxy).
func WithImage(name, ref string) Option {
	return func(s *settings) error {
		if _, err := images.Lookup(name); err != nil || name == "base" {
			return fmt.Errorf("stampedetest: WithImage: unknown image %q (postgres, redis, kafka, temporal or stampede)", name)
		}
		if ref == "" {
			return fmt.Errorf("stampedetest: WithImage(%q): empty image reference", name)
		}
		s.images[name] = ref
		return nil
	}
}

// WithEnv adds environment variables to every Stampede process, e.g.
// STAMPEDE_OUTAGE_BUDGET=30s (see `stampede serve NAME --help`).
func WithEnv(env map[string]string) Option {
	return func(s *settings) error {
		maps.Copy(s.env, env)
		return nil
	}
}

// WithDeliveryWait bounds how long a saga waits for the delivered signal
// before it counts the order delivered (STAMPEDE_DELIVERY_WAIT; two weeks
// by default, so an order rests in_transit until Shipping delivers it).
func WithDeliveryWait(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("stampedetest: WithDeliveryWait(%s): want a positive duration", d)
		}
		s.env["STAMPEDE_DELIVERY_WAIT"] = d.String()
		return nil
	}
}

// WithScale sets how many saga workers and orchestrator members run (1 and 1
// by default).
func WithScale(workers, orchestrators int) Option {
	return func(s *settings) error {
		if workers < 1 || orchestrators < 1 {
			return fmt.Errorf("stampedetest: WithScale(%d, %d): want at least one of each", workers, orchestrators)
		}
		s.workers, s.orchestrators = workers, orchestrators
		return nil
	}
}

// WithHostPorts publishes each endpoint on a fixed port of 127.0.0.1, the
// project's default port plus offset (Orders on 8080+offset, ...), instead
// of an ephemeral one. A port already taken fails Start naming it.
func WithHostPorts(offset int) Option {
	return func(s *settings) error {
		if offset < 1 || offset > 40000 {
			return fmt.Errorf("stampedetest: WithHostPorts(%d): want an offset between 1 and 40000", offset)
		}
		s.portOffset = offset
		return nil
	}
}

// WithStartupTimeout bounds the whole start (4 minutes by default).
func WithStartupTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("stampedetest: WithStartupTimeout(%s): want a positive duration", d)
		}
		s.timeout = d
		return nil
	}
}

// RequireEngine makes a missing container engine fail the test instead of
// skipping it (as STAMPEDE_REQUIRE_CONTAINERS=1 does): for CI, where a skip
// would hide that nothing ran.
func RequireEngine() Option {
	return func(s *settings) error {
		s.requireEngine = true
		return nil
	}
}

// resolve fills in the parts Platform needs.
func (s *settings) resolve() {
	if len(s.parts) == 0 || s.parts[Platform] {
		for _, p := range allParts {
			s.parts[p] = true
		}
	}
}
