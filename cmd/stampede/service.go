package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

// service is the start-up the HTTP platform services share: their --port,
// logger and metrics registry, and serving the router behind the
// authentication guard until ctx ends.
type service struct {
	name  string // the component's config name: port, log and metrics label
	port  int
	hosts string // --allowed-hosts
	log   *slog.Logger
	reg   *prometheus.Registry
	lim   web.Limits
	// access and users widen the guard beyond "service token only" (the
	// Orders API: anonymous placing, user tokens for reading).
	access map[string]web.Access
	users  bool
}

// newService registers --port, --allowed-hosts, --max-in-flight and
// --request-timeout for the service name on fs.
func newService(fs *config.FlagSet, name string) *service {
	s := &service{name: name, log: telemetry.NewLogger(name, nil), reg: telemetry.NewRegistry()}
	portFlag(fs, &s.port, name, "HTTP port on 127.0.0.1")
	allowedHostsFlag(fs, &s.hosts)
	limitsFlags(fs, &s.lim)
	return s
}

// limitsFlags registers --max-in-flight and --request-timeout, the
// web.Limits of an HTTP service.
func limitsFlags(fs *config.FlagSet, l *web.Limits) {
	fs.IntVar(&l.MaxInFlight, "max-in-flight", "STAMPEDE_HTTP_MAX_IN_FLIGHT", web.DefaultMaxInFlight,
		"requests served at once; one more is answered 503 with Retry-After at once (0: no cap; /healthz, /readyz, /metrics never count)")
	fs.DurationVar(&l.Timeout, "request-timeout", "STAMPEDE_HTTP_REQUEST_TIMEOUT", web.DefaultRequestTimeout,
		"deadline of every request: a store or Temporal call not answered by then is a 503 with Retry-After, a body not received by then a 408 (0: none)")
}

// serve adds /metrics to mux and serves it behind the guard, the limits and
// the middleware on 127.0.0.1:port until ctx ends, then gives requests in flight
// 10 s. attrs go on the "listening" log line.
func (s *service) serve(ctx context.Context, mux *http.ServeMux, attrs ...any) error {
	if err := s.lim.Validate(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.reg))
	g, err := newGuard(s.name, s.port, s.hosts, s.access, s.users)
	if err != nil {
		return err
	}
	addr := config.ListenAddr(s.port)
	s.log.Info(s.name+" listening", append([]any{"addr", addr, "allowed_hosts", g.Hosts,
		"max_in_flight", s.lim.MaxInFlight, "request_timeout", s.lim.Timeout}, attrs...)...)
	m := web.NewMetrics(s.reg, s.name)
	return web.Serve(ctx, addr, web.Middleware(web.Limit(g.Wrap(mux), s.lim, m), s.log, m), 10*time.Second)
}

// newGuard returns the guard of the service name on port: the stack's
// service token, the Host values it answers (hosts, comma-separated, or
// 127.0.0.1:PORT and localhost:PORT, and for Payments its toxiproxy port
// too, through which the saga reaches it) and, with users, user tokens on
// the routes access names.
func newGuard(name string, port int, hosts string, access map[string]web.Access, users bool) (*web.Guard, error) {
	tok, err := config.ServiceToken()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	allowed := splitComma(hosts)
	if len(allowed) == 0 {
		ports := []int{port}
		if name == config.Payments {
			ports = append(ports, config.Port(config.PaymentsProxy))
		}
		allowed = config.DefaultHosts(ports...)
	}
	g, err := web.NewGuard(tok, allowed)
	if err != nil {
		return nil, err
	}
	g.Routes = access
	if users {
		key, err := config.UserTokenKey()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		g.Users = web.NewUserTokens(key)
	}
	return g, nil
}

// pgService is a service whose state and outbox live in its own PostgreSQL
// schema (Orders, Inventory, Payments, Shipping).
type pgService struct {
	*service
	pgURL   string
	dbConns int
}

// newPGService registers --port, --postgres-url and --db-conns (env connsEnv).
func newPGService(fs *config.FlagSet, name, connsEnv string) *pgService {
	s := &pgService{service: newService(fs, name)}
	postgresURLFlag(fs, &s.pgURL)
	dbConnsFlag(fs, &s.dbConns, connsEnv)
	return s
}

// open connects to the service's schema, applies its migrations and makes
// sure its outbox table exists; the caller closes the pool.
func (s *pgService) open(ctx context.Context, schema string, migrations fs.FS) (*pgxpool.Pool, error) {
	db, err := postgres.Open(ctx, s.pgURL, schema, int32(s.dbConns), 30*time.Second)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, db, schema, migrations); err != nil {
		db.Close()
		return nil, err
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
