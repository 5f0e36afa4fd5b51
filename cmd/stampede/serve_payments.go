package main

import (
	"context"
	"fmt"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

func servePayments(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve payments", `The Payments service: POST /v1/charges (Idempotency-Key required) captures a charge
(201) or declines it for the test tokens tok_declined / tok_insufficient_funds (402);
the charge is committed before the answer is written. POST /v1/charges/{id}/refunds
refunds one charge in full, POST /v1/refunds?orderId= every charge of an order;
GET /v1/charges?orderId= lists the charges with their refunds.`)
	var (
		port, maxConn int
		pgURL         string
		latency       time.Duration
	)
	fs.IntVar(&port, "port", config.PortEnv(config.Payments), config.Port(config.Payments), "HTTP port on 127.0.0.1")
	fs.StringVar(&pgURL, "postgres-url", config.EnvPostgresURL, config.PostgresURL(), "PostgreSQL URL of the stampede database")
	fs.IntVar(&maxConn, "db-conns", "STAMPEDE_PAYMENTS_DB_CONNS", 20, "PostgreSQL connections")
	fs.DurationVar(&latency, "charge-latency", "STAMPEDE_PAYMENTS_CHARGE_LATENCY", 0,
		"simulated processor delay of each charge, before its commit (widens the window in which a kill lands mid-flight)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if latency < 0 {
		return fmt.Errorf("--charge-latency: want 0 or more, got %s", latency)
	}
	log := telemetry.NewLogger("payments", nil)
	reg := telemetry.NewRegistry()

	db, err := postgres.Open(ctx, pgURL, payment.Schema, int32(maxConn), 30*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, payment.Schema, payment.Migrations()); err != nil {
		return err
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		return err
	}

	svc := &payment.Service{Store: payment.NewStore(db), Log: log, Metrics: payment.NewMetrics(reg), ChargeLatency: latency,
		Ready: func(ctx context.Context) error { return db.Ping(ctx) }}
	mux := svc.Router()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	addr := fmt.Sprintf("%s:%d", config.Host, port)
	log.Info("payments listening", "addr", addr, "charge_latency", latency.String())
	return web.Serve(ctx, addr, web.Middleware(mux, log, web.NewMetrics(reg, "payments")), 10*time.Second)
}
