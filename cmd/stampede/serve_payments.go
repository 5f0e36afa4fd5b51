package main

import (
	"context"
	"fmt"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/vault"
)

func servePayments(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve payments", `The Payments service: POST /v1/charges (Idempotency-Key required) captures a charge
(201) or declines it for the test tokens tok_declined / tok_insufficient_funds (402);
the charge is committed before the answer is written. POST /v1/charges/{id}/refunds
refunds one charge in full, POST /v1/refunds?orderId= every charge of an order;
GET /v1/charges?orderId= lists the charges with their refunds.`)
	proc := newPGService(fs, config.Payments, "STAMPEDE_PAYMENTS_DB_CONNS")
	var latency time.Duration
	fs.DurationVar(&latency, "charge-latency", "STAMPEDE_PAYMENTS_CHARGE_LATENCY", 0,
		"simulated processor delay of each charge, before its commit (widens the window in which a kill lands mid-flight)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if latency < 0 {
		return fmt.Errorf("--charge-latency: want 0 or more, got %s", latency)
	}
	db, err := proc.open(ctx, payment.Schema, payment.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := vault.Ensure(ctx, db); err != nil {
		return err
	}
	svc := &payment.Service{Store: payment.NewStore(db), Log: proc.log, Metrics: payment.NewMetrics(proc.reg), ChargeLatency: latency,
		Ready: db.Ping}
	return proc.serve(ctx, svc.Router(), "charge_latency", latency.String())
}
