package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// Persistence backends the server can run on.
const (
	persistenceSQLite   = "sqlite"
	persistencePostgres = "postgres"
)

// options is everything the command line and the environment can set.
// Each flag falls back to an environment variable, then to a default.
type options struct {
	IP            string
	ListenAll     bool // bind the frontend, UI and metrics on every interface (in a container)
	Port          int
	UIPort        int
	MetricsPort   int
	PProfPort     int
	DataDir       string
	Persistence   string
	PostgresURL   string
	HistoryShards int
	SQLiteConns   int
	LockBoost     int
	Namespace     string
	LogLevel      string
	DynamicConfig []string
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseOptions reads args (without the program name) with getenv as the
// environment. A flag beats its environment variable, which beats the default.
func parseOptions(args []string, getenv func(string) string, usageOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("stampede-temporal", flag.ContinueOnError)
	fs.SetOutput(usageOut)

	var envErrs []error
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
	}
	num := func(p *int, name, env string, def int, usage string) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: not a number", env, v))
			} else {
				def = n
			}
		}
		fs.IntVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
	}

	str(&o.IP, "ip", "STAMPEDE_TEMPORAL_IP", "127.0.0.1",
		"address every listener binds to; must be a loopback address")
	listenAll := getenv("STAMPEDE_TEMPORAL_LISTEN_ALL")
	fs.BoolVar(&o.ListenAll, "listen-all", listenAll == "1" || listenAll == "true",
		"bind the frontend, the Web UI and /metrics on every interface, not just --ip: for a container,\n"+
			"whose own network is the boundary (the image sets it); Temporal's internal services stay on --ip (env STAMPEDE_TEMPORAL_LISTEN_ALL)")
	num(&o.Port, "port", "STAMPEDE_TEMPORAL_PORT", 7233,
		"frontend gRPC port: SDK clients, the Web UI and the grpc.health.v1 readiness check")
	num(&o.UIPort, "ui-port", "STAMPEDE_TEMPORAL_UI_PORT", 8233,
		"Web UI port; 0 disables the UI")
	num(&o.MetricsPort, "metrics-port", "STAMPEDE_TEMPORAL_METRICS_PORT", 8234,
		"port of the server's Prometheus /metrics; 0 disables it")
	num(&o.PProfPort, "pprof-port", "STAMPEDE_TEMPORAL_PPROF_PORT", 0,
		"port of Go's /debug/pprof for profiling the server; 0 (default) disables it")
	str(&o.DataDir, "data-dir", "STAMPEDE_TEMPORAL_DATA_DIR", ".stampede/data/temporal",
		"directory of the SQLite files temporal.db and temporal_visibility.db")
	str(&o.Persistence, "persistence", "STAMPEDE_TEMPORAL_PERSISTENCE", persistenceSQLite,
		"where history lives: sqlite (files under --data-dir) or postgres (--postgres-url)")
	str(&o.PostgresURL, "postgres-url", "STAMPEDE_TEMPORAL_POSTGRES_URL", "",
		"PostgreSQL URL for --persistence postgres, e.g. postgres://postgres@127.0.0.1:5432/temporal?sslmode=disable;\n"+
			"the database named in the path and <name>_visibility are created, and the schema applied, if missing")
	num(&o.HistoryShards, "history-shards", "STAMPEDE_TEMPORAL_HISTORY_SHARDS", 0,
		"number of history shards; 0 means 1 for sqlite and 4 for postgres.\n"+
			"Fixed forever when a store is first used: a different count later is refused")
	num(&o.SQLiteConns, "sqlite-conns", EnvSQLiteConns, defaultSQLiteConns,
		"connections to each SQLite file: writes still go one at a time (a lock of this process),\n"+
			"queries run beside them; 1 is one connection for everything")
	num(&o.LockBoost, "write-lock-boost", EnvWriteLockBoost, defaultWriteLockBoost,
		"nice levels above the server's own at which a goroutine holding the SQLite write lock runs\n"+
			"(its thread, for the length of the hold; needs root or CAP_SYS_NICE, else off); 0 turns it off")
	str(&o.Namespace, "namespace", "STAMPEDE_TEMPORAL_NAMESPACE", "default",
		"namespace created at start if missing (retention 1 day), with the OrderId and UserId search attributes")
	str(&o.LogLevel, "log-level", "STAMPEDE_TEMPORAL_LOG_LEVEL", "warn",
		"server log level: debug, info, warn or error (JSON lines on stderr)")

	var dyn stringList
	fs.Var(&dyn, "dynamic-config",
		"dynamic config override KEY=VALUE, repeatable; VALUE is YAML (100, true, 5s, \"text\").\n"+
			"Applied over the tuned defaults (env STAMPEDE_TEMPORAL_DYNAMIC_CONFIG, space-separated; flags replace it)")

	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: stampede-temporal [flags]\n\n"+
			"Runs a single-node Temporal server (frontend, history, matching, worker) with the Web UI,\n"+
			"bound to loopback. Ready when grpc.health.v1 Check on --port answers SERVING; that happens only\n"+
			"after the namespace and its search attributes exist. Stops cleanly on SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := errors.Join(envErrs...); err != nil {
		return options{}, err
	}
	o.DynamicConfig = dyn
	if v := getenv("STAMPEDE_TEMPORAL_DYNAMIC_CONFIG"); len(dyn) == 0 && v != "" {
		o.DynamicConfig = strings.Fields(v)
	}
	if o.HistoryShards == 0 {
		o.HistoryShards = defaultShards(o.Persistence)
	}
	return o, o.validate()
}

// bindIP is the address the public listeners (frontend, UI, metrics) bind:
// every interface with --listen-all, else --ip.
func (o options) bindIP() string {
	if o.ListenAll {
		return "0.0.0.0"
	}
	return o.IP
}

// defaultShards is the shard count used when none was asked for. SQLite has
// one writer, so more shards only add contention; PostgreSQL writes shards in
// parallel.
func defaultShards(persistence string) int {
	if persistence == persistencePostgres {
		return 4
	}
	return 1
}

func (o options) validate() error {
	ip := net.ParseIP(o.IP)
	if ip == nil {
		return fmt.Errorf("--ip %q: not an IP address", o.IP)
	}
	if !ip.IsLoopback() {
		return fmt.Errorf("--ip %q: only loopback addresses are allowed", o.IP)
	}
	ports := []struct {
		name string
		port int
		zero bool
	}{
		{"--port", o.Port, false},
		{"--ui-port", o.UIPort, true},
		{"--metrics-port", o.MetricsPort, true},
		{"--pprof-port", o.PProfPort, true},
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.port == 0 && p.zero {
			continue
		}
		if p.port < 1 || p.port > 65535 {
			return fmt.Errorf("%s %d: not a port number", p.name, p.port)
		}
		if other, ok := seen[p.port]; ok {
			return fmt.Errorf("%s %d: already used by %s", p.name, p.port, other)
		}
		seen[p.port] = p.name
	}
	switch o.Persistence {
	case persistenceSQLite:
		if o.DataDir == "" {
			return errors.New("--data-dir must not be empty with --persistence sqlite")
		}
	case persistencePostgres:
		if o.PostgresURL == "" {
			return errors.New("--postgres-url is required with --persistence postgres")
		}
	default:
		return fmt.Errorf("--persistence %q: want sqlite or postgres", o.Persistence)
	}
	if o.LockBoost < 0 || o.LockBoost > 39 {
		return fmt.Errorf("--write-lock-boost %d: want 0 to 39 nice levels", o.LockBoost)
	}
	if o.SQLiteConns < 1 || o.SQLiteConns > 64 {
		return fmt.Errorf("--sqlite-conns %d: want 1 to 64", o.SQLiteConns)
	}
	if o.HistoryShards < 1 {
		return fmt.Errorf("--history-shards %d: must be at least 1", o.HistoryShards)
	}
	if o.Namespace == "" {
		return errors.New("--namespace must not be empty")
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel)
	}
	if _, err := parseDynamicConfig(o.DynamicConfig); err != nil {
		return err
	}
	return nil
}
