package main

import (
	"context"
	"fmt"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

func serveInventory(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve inventory", `The Inventory service: POST /v1/reservations holds stock for an order (all or
nothing, idempotent per Idempotency-Key or order id), POST /v1/reservations/{id}/release
and POST /v1/reservations/release?orderId= give it back, GET /v1/stock/{sku} shows
onHand/reserved/available. Stock is seeded at start (existing SKUs are kept):
SKU-00001 … SKU-NNNNN with --seed-units each, and SKU-OOS with none.`)
	var (
		port, maxConn, seedSKUs, seedUnits int
		pgURL                              string
	)
	fs.IntVar(&port, "port", config.PortEnv(config.Inventory), config.Port(config.Inventory), "HTTP port on 127.0.0.1")
	fs.StringVar(&pgURL, "postgres-url", config.EnvPostgresURL, config.PostgresURL(), "PostgreSQL URL of the stampede database")
	fs.IntVar(&maxConn, "db-conns", "STAMPEDE_INVENTORY_DB_CONNS", 20, "PostgreSQL connections")
	fs.IntVar(&seedSKUs, "seed-skus", "STAMPEDE_INVENTORY_SEED_SKUS", 1000, "SKUs to seed (SKU-00001 …); 0 seeds only SKU-OOS")
	fs.IntVar(&seedUnits, "seed-units", "STAMPEDE_INVENTORY_SEED_UNITS", 1_000_000, "units on hand of each seeded SKU")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if seedSKUs < 0 || seedSKUs > 99999 {
		return fmt.Errorf("--seed-skus: want 0..99999, got %d", seedSKUs)
	}
	if seedUnits < 0 {
		return fmt.Errorf("--seed-units: want 0 or more, got %d", seedUnits)
	}
	log := telemetry.NewLogger("inventory", nil)
	reg := telemetry.NewRegistry()

	db, err := postgres.Open(ctx, pgURL, inventory.Schema, int32(maxConn), 30*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, inventory.Schema, inventory.Migrations()); err != nil {
		return err
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		return err
	}
	store := inventory.NewStore(db)
	if err := store.Seed(ctx, seedSKUs, int64(seedUnits)); err != nil {
		return err
	}

	svc := &inventory.Service{Store: store, Log: log, Metrics: inventory.NewMetrics(reg),
		Ready: func(ctx context.Context) error { return db.Ping(ctx) }}
	mux := svc.Router()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	addr := fmt.Sprintf("%s:%d", config.Host, port)
	log.Info("inventory listening", "addr", addr)
	return web.Serve(ctx, addr, web.Middleware(mux, log, web.NewMetrics(reg, "inventory")), 10*time.Second)
}
