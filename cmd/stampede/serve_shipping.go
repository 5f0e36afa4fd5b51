package main

import (
	"context"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/shipping"
)

func serveShipping(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve shipping", `The Shipping service: POST /v1/shipments books an order's shipment (201 with a
tracking number; 422 undeliverable for country XX or postal code 00000), idempotent per
Idempotency-Key or order id. POST /v1/shipments/{id}/cancel and /deliver (delivery
confirmation, published as shipment.delivered), POST /v1/shipments/cancel?orderId=,
GET /v1/shipments?orderId=.`)
	proc := newPGService(fs, config.Shipping, "STAMPEDE_SHIPPING_DB_CONNS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := proc.open(ctx, shipping.Schema, shipping.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()
	svc := &shipping.Service{Store: shipping.NewStore(db), Log: proc.log, Metrics: shipping.NewMetrics(proc.reg), Ready: db.Ping}
	return proc.serve(ctx, svc.Router())
}
