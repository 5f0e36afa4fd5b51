// Package config resolves where every Stampede component listens and how the
// processes reach each other: ports, URLs and external infrastructure, from
// flags and STAMPEDE_* environment variables.
//
// It must never open a connection: it only computes addresses.
package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Component names, as used in env var names (STAMPEDE_<NAME>_PORT), log files and pid files.
const (
	Orders          = "orders"
	Inventory       = "inventory"
	Payments        = "payments"
	Shipping        = "shipping"
	Notifications   = "notifications"
	Analytics       = "analytics"
	Kafka           = "kafka"
	KafkaController = "kafka_controller"
	KafkaSASL       = "kafka_sasl"
	Temporal        = "temporal"
	TemporalUI      = "temporal_ui"
	TemporalMetrics = "temporal_metrics"
	Postgres        = "postgres"
	Redis           = "redis"
	Prometheus      = "prometheus"
	Toxiproxy       = "toxiproxy"
	PaymentsProxy   = "payments_proxy"
	Relay           = "relay"
	Orchestrator    = "orchestrator"
	Worker          = "worker"
)

// DefaultPorts is the one set of default ports the whole project agrees on.
var DefaultPorts = map[string]int{
	Orders:          8080,
	Inventory:       8081,
	Payments:        8082,
	Shipping:        8083,
	Notifications:   8084,
	Analytics:       8085,
	Kafka:           9092,
	KafkaController: 9093,
	KafkaSASL:       9094, // a SASL_PLAINTEXT SCRAM-SHA-256 listener, to test the SASL path
	Temporal:        7233,
	TemporalUI:      8233,
	TemporalMetrics: 8234,
	Postgres:        5432,
	Redis:           6379,
	Prometheus:      9090,
	Toxiproxy:       8474,
	PaymentsProxy:   18082,
	Relay:           8090,
	Orchestrator:    8091, // members take 8091, 8092, ...
	Worker:          8096, // workers take 8096, 8097, ...
}

// Host is the only interface Stampede binds: loopback.
const Host = "127.0.0.1"

// EnvListenHost moves every server's listener off loopback. Only container
// images set it (to 0.0.0.0): there the container's own network is the
// boundary, and the engine publishes the ports on the host's 127.0.0.1.
const EnvListenHost = "STAMPEDE_LISTEN_HOST"

// ListenHost returns the address servers bind: Host unless
// STAMPEDE_LISTEN_HOST says otherwise. Clients still reach them through Addr.
func ListenHost() string {
	return Env(EnvListenHost, Host)
}

// ListenAddr returns the host:port a server listens on for port.
func ListenAddr(port int) string {
	return fmt.Sprintf("%s:%d", ListenHost(), port)
}

// PortEnv returns the env var that overrides the port of a component.
func PortEnv(name string) string {
	return "STAMPEDE_" + strings.ToUpper(name) + "_PORT"
}

// EnvPortOffset shifts every default port by its value, so a second stack
// (a developer's next to CI's, say) can run beside the first.
const EnvPortOffset = "STAMPEDE_PORT_OFFSET"

// Port returns the configured port of a component: STAMPEDE_<NAME>_PORT, or
// the default shifted by STAMPEDE_PORT_OFFSET. An invalid value in the
// environment is reported by Validate; here it falls back.
func Port(name string) int {
	if v := os.Getenv(PortEnv(name)); v != "" {
		if p, err := strconv.Atoi(v); err == nil && p > 0 && p < 65536 {
			return p
		}
	}
	off, _ := strconv.Atoi(os.Getenv(EnvPortOffset))
	return DefaultPorts[name] + off
}

// Addr returns host:port of a component on loopback.
func Addr(name string) string {
	return fmt.Sprintf("%s:%d", Host, Port(name))
}

// Validate checks every STAMPEDE_*_PORT in the environment and names the first bad one.
func Validate() error {
	if v := os.Getenv(EnvPortOffset); v != "" {
		off, err := strconv.Atoi(v)
		if err != nil || off < 0 || off > 40000 {
			return fmt.Errorf("%s=%q: want a number between 0 and 40000", EnvPortOffset, v)
		}
	}
	for name := range DefaultPorts {
		env := PortEnv(name)
		v := os.Getenv(env)
		if v == "" {
			continue
		}
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p >= 65536 {
			return fmt.Errorf("%s=%q: want a port number between 1 and 65535", env, v)
		}
	}
	return nil
}

// External infrastructure: when one of these is set, the stack does not start
// that component, only checks it, and every process connects to it.
const (
	EnvKafkaBrokers    = "STAMPEDE_KAFKA_BROKERS"
	EnvTemporalAddress = "STAMPEDE_TEMPORAL_ADDRESS"
	EnvPostgresURL     = "STAMPEDE_POSTGRES_URL"
	EnvRedisURL        = "STAMPEDE_REDIS_URL"
	EnvTemporalNS      = "STAMPEDE_TEMPORAL_NAMESPACE"
)

// KafkaBrokers returns the seed brokers.
func KafkaBrokers() []string {
	if v := os.Getenv(EnvKafkaBrokers); v != "" {
		var out []string
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				out = append(out, b)
			}
		}
		return out
	}
	return []string{Addr(Kafka)}
}

// TemporalAddress returns the Temporal frontend host:port.
func TemporalAddress() string {
	if v := os.Getenv(EnvTemporalAddress); v != "" {
		return v
	}
	return Addr(Temporal)
}

// TemporalNamespace returns the namespace every worker and client uses.
func TemporalNamespace() string {
	if v := os.Getenv(EnvTemporalNS); v != "" {
		return v
	}
	return "default"
}

// PostgresURL returns the URL of the stampede database: STAMPEDE_POSTGRES_URL,
// or the stack's own with the postgres role's password (SecretPostgresPassword).
// It carries the password: show it only through RedactURL.
func PostgresURL() string {
	if v := os.Getenv(EnvPostgresURL); v != "" {
		return v
	}
	return postgresURL("stampede")
}

// PostgresAdminURL returns the URL of the stack's own cluster's postgres
// database, where the launcher creates the stampede database.
func PostgresAdminURL() string { return postgresURL("postgres") }

func postgresURL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: Addr(Postgres), Path: "/" + db, RawQuery: "sslmode=disable"}
	// Without the secret the URL has no password, and the server's refusal
	// says so; the launcher writes it before anything connects.
	if pw, err := Secret(SecretPostgresPassword); err == nil {
		u.User = url.UserPassword("postgres", pw)
	}
	return u.String()
}

// RedisURL returns the Redis URL: STAMPEDE_REDIS_URL, or the stack's own with
// its requirepass (SecretRedisPassword). Show it only through RedactURL.
func RedisURL() string {
	if v := os.Getenv(EnvRedisURL); v != "" {
		return v
	}
	u := url.URL{Scheme: "redis", Host: Addr(Redis), Path: "/0"}
	if pw, err := Secret(SecretRedisPassword); err == nil {
		u.User = url.UserPassword("", pw)
	}
	return u.String()
}

// External reports whether a component is external infrastructure (not started by the stack).
func External(name string) bool {
	switch name {
	case Kafka:
		return os.Getenv(EnvKafkaBrokers) != ""
	case Temporal:
		return os.Getenv(EnvTemporalAddress) != ""
	case Postgres:
		return os.Getenv(EnvPostgresURL) != ""
	case Redis:
		return os.Getenv(EnvRedisURL) != ""
	}
	return false
}

// ServiceURL returns the base URL a client uses to reach a service:
// STAMPEDE_<NAME>_URL, or http://127.0.0.1:<port>. Payments is reached through
// its toxiproxy proxy by default, so the demo path is the chaos path.
func ServiceURL(name string) string {
	if v := os.Getenv("STAMPEDE_" + strings.ToUpper(name) + "_URL"); v != "" {
		return strings.TrimRight(v, "/")
	}
	if name == Payments {
		return "http://" + Addr(PaymentsProxy)
	}
	return "http://" + Addr(name)
}

// Env returns the value of key, or def when unset or empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
