package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

func serveOrders(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve orders", `The Orders API: POST /v1/orders commits the order and its events (outbox) in one
PostgreSQL transaction and answers 202; GET /v1/orders/{id} shows its status and history,
projected from the saga's status events; POST /v1/orders/{id}/cancel asks the saga to cancel.`)
	var (
		port    int
		pgURL   string
		brokers string
		maxConn int
		tempo   string
		tempoNS string
	)
	fs.IntVar(&port, "port", config.PortEnv(config.Orders), config.Port(config.Orders), "HTTP port on 127.0.0.1")
	fs.StringVar(&pgURL, "postgres-url", config.EnvPostgresURL, config.PostgresURL(), "PostgreSQL URL of the stampede database")
	fs.StringVar(&brokers, "kafka-brokers", config.EnvKafkaBrokers, joinComma(config.KafkaBrokers()), "Kafka seed brokers")
	fs.IntVar(&maxConn, "db-conns", "STAMPEDE_ORDERS_DB_CONNS", 20, "PostgreSQL connections")
	fs.StringVar(&tempo, "temporal-address", config.EnvTemporalAddress, config.TemporalAddress(), "Temporal frontend host:port (cancel signals and status queries)")
	fs.StringVar(&tempoNS, "namespace", config.EnvTemporalNS, config.TemporalNamespace(), "Temporal namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := telemetry.NewLogger("orders", nil)
	reg := telemetry.NewRegistry()

	db, err := postgres.Open(ctx, pgURL, order.Schema, int32(maxConn), 30*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, order.Schema, order.Migrations()); err != nil {
		return err
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		return err
	}
	store := order.NewStore(db)

	km := kafka.NewMetrics(reg)
	cl, err := kgo.NewClient(append(kafka.BaseOpts("orders-projection", splitComma(brokers)),
		append(order.ProjectorOpts(), kgo.WithHooks(km))...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	// Lazy: the Orders API starts and takes orders while Temporal is down;
	// only cancellation needs it, and connects on first use.
	tc, err := client.NewLazyClient(client.Options{HostPort: tempo, Namespace: tempoNS, Logger: sdklog.NewStructuredLogger(log)})
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()

	svc := &order.Service{Store: store, Log: log, Canceller: &saga.Canceller{Client: tc}, Ready: func(ctx context.Context) error { return db.Ping(ctx) }}
	mux := svc.Router()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	handler := web.Middleware(mux, log, web.NewMetrics(reg, "orders"))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return (&order.Projector{Client: cl, Store: store, Log: log, Metrics: km}).Run(gctx)
	})
	g.Go(func() error {
		log.Info("orders listening", "addr", fmt.Sprintf("%s:%d", config.Host, port))
		return web.Serve(gctx, fmt.Sprintf("%s:%d", config.Host, port), handler, 10*time.Second)
	})
	return g.Wait()
}
