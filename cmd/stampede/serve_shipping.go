package main

import (
	"context"
	"fmt"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

func serveShipping(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve shipping", `The Shipping service: POST /v1/shipments books an order's shipment (201 with a
tracking number; 422 undeliverable for country XX or postal code 00000), idempotent per
Idempotency-Key or order id. POST /v1/shipments/{id}/cancel and /deliver (delivery
confirmation, published as shipment.delivered), POST /v1/shipments/cancel?orderId=,
GET /v1/shipments?orderId=.`)
	var (
		port, maxConn int
		pgURL         string
	)
	fs.IntVar(&port, "port", config.PortEnv(config.Shipping), config.Port(config.Shipping), "HTTP port on 127.0.0.1")
	fs.StringVar(&pgURL, "postgres-url", config.EnvPostgresURL, config.PostgresURL(), "PostgreSQL URL of the stampede database")
	fs.IntVar(&maxConn, "db-conns", "STAMPEDE_SHIPPING_DB_CONNS", 20, "PostgreSQL connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := telemetry.NewLogger("shipping", nil)
	reg := telemetry.NewRegistry()

	db, err := postgres.Open(ctx, pgURL, shipping.Schema, int32(maxConn), 30*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, shipping.Schema, shipping.Migrations()); err != nil {
		return err
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		return err
	}

	svc := &shipping.Service{Store: shipping.NewStore(db), Log: log, Metrics: shipping.NewMetrics(reg),
		Ready: func(ctx context.Context) error { return db.Ping(ctx) }}
	mux := svc.Router()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	addr := fmt.Sprintf("%s:%d", config.Host, port)
	log.Info("shipping listening", "addr", addr)
	return web.Serve(ctx, addr, web.Middleware(mux, log, web.NewMetrics(reg, "shipping")), 10*time.Second)
}
