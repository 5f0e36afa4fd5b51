package main

import (
	"context"
	"fmt"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/inventory"
)

func serveInventory(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve inventory", `The Inventory service: POST /v1/reservations holds stock for an order (all or
nothing, idempotent per Idempotency-Key or order id), POST /v1/reservations/{id}/release
and POST /v1/reservations/release?orderId= give it back, GET /v1/stock/{sku} shows
onHand/reserved/available. Stock is seeded at start (existing SKUs are kept):
SKU-00001 … SKU-NNNNN with --seed-units each, and SKU-OOS with none.`)
	proc := newPGService(fs, config.Inventory, "STAMPEDE_INVENTORY_DB_CONNS")
	var seedSKUs, seedUnits int
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
	db, err := proc.open(ctx, inventory.Schema, inventory.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()
	store := inventory.NewStore(db)
	if err := store.Seed(ctx, seedSKUs, int64(seedUnits)); err != nil {
		return err
	}
	svc := &inventory.Service{Store: store, Log: proc.log, Metrics: inventory.NewMetrics(proc.reg), Ready: db.Ping}
	return proc.serve(ctx, svc.Router())
}
