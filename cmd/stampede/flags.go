package main

import (
	"strings"

	"github.com/stampede-dev/stampede/platform/config"
)

// The flags several commands take, declared once so that each reads the same
// everywhere: name, environment variable, default and help.

// portFlag registers --port for the component name, with its
// STAMPEDE_<NAME>_PORT variable and default port.
func portFlag(fs *config.FlagSet, p *int, name, usage string) {
	fs.IntVar(p, "port", config.PortEnv(name), config.Port(name), usage)
}

// allowedHostsFlag registers --allowed-hosts, the Host values an HTTP
// service answers (its default, empty, means 127.0.0.1:PORT,localhost:PORT).
func allowedHostsFlag(fs *config.FlagSet, p *string) {
	fs.StringVar(p, "allowed-hosts", config.EnvAllowedHosts, "",
		"comma-separated Host header values answered, others get 421 (\"*\": any, for containers); default 127.0.0.1:PORT,localhost:PORT")
}

// postgresURLFlag registers --postgres-url.
func postgresURLFlag(fs *config.FlagSet, p *string) {
	fs.StringVar(p, "postgres-url", config.EnvPostgresURL, config.PostgresURL(), "PostgreSQL URL of the stampede database")
}

// dbConnsFlag registers --db-conns, the size of a service's PostgreSQL pool.
func dbConnsFlag(fs *config.FlagSet, p *int, env string) {
	fs.IntVar(p, "db-conns", env, 20, "PostgreSQL connections")
}

// kafkaBrokersFlag registers --kafka-brokers (comma-separated; splitComma reads it).
func kafkaBrokersFlag(fs *config.FlagSet, p *string, usage string) {
	fs.StringVar(p, "kafka-brokers", config.EnvKafkaBrokers, joinComma(config.KafkaBrokers()), usage)
}

// temporalFlags registers --temporal-address and --namespace.
func temporalFlags(fs *config.FlagSet, addr, namespace *string, addrUsage string) {
	fs.StringVar(addr, "temporal-address", config.EnvTemporalAddress, config.TemporalAddress(), addrUsage)
	namespaceFlag(fs, namespace)
}

// namespaceFlag registers --namespace, the Temporal namespace.
func namespaceFlag(fs *config.FlagSet, p *string) {
	fs.StringVar(p, "namespace", config.EnvTemporalNS, config.TemporalNamespace(), "Temporal namespace")
}

// redisURLFlag registers --redis-url.
func redisURLFlag(fs *config.FlagSet, p *string, usage string) {
	fs.StringVar(p, "redis-url", config.EnvRedisURL, config.RedisURL(), usage)
}

// ordersURLFlag registers --orders-url, where the load commands send orders.
func ordersURLFlag(fs *config.FlagSet, p *string) {
	fs.StringVar(p, "orders-url", "STAMPEDE_ORDERS_URL", config.ServiceURL(config.Orders), "Orders API base URL")
}

// prometheusFlag registers --prometheus.
func prometheusFlag(fs *config.FlagSet, p *string) {
	fs.StringVar(p, "prometheus", "STAMPEDE_PROMETHEUS_URL", "http://"+config.Addr(config.Prometheus), "Prometheus base URL")
}

// splitComma splits a comma-separated flag value, dropping blanks.
func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// joinComma is the flag default of a list, the inverse of splitComma.
func joinComma(s []string) string { return strings.Join(s, ",") }
