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
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/temporalclient"
	"github.com/stampede-dev/stampede/platform/vault"
)

func serveOrders(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve orders", `The Orders API: POST /v1/orders commits the order and its events (outbox) in one
PostgreSQL transaction and answers 202; GET /v1/orders/{id} shows its status and history,
projected from the saga's status events; POST /v1/orders/{id}/cancel asks the saga to cancel.`)
	proc := newPGService(fs, config.Orders, "STAMPEDE_ORDERS_DB_CONNS")
	var brokers, tempo, tempoNS string
	var projectionLinger time.Duration
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers")
	fs.DurationVar(&projectionLinger, "projection-linger", "STAMPEDE_ORDERS_PROJECTION_LINGER", 20*time.Millisecond,
		"after a small poll the status projection waits this long, so the events arriving meanwhile are applied and committed together (the most it delays GET /v1/orders/{id})")
	temporalFlags(fs, &tempo, &tempoNS, "Temporal frontend host:port (cancel signals and status queries)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if projectionLinger < 0 || projectionLinger > time.Second {
		return fmt.Errorf("--projection-linger %s: want 0..1s", projectionLinger)
	}
	db, err := proc.open(ctx, order.Schema, order.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := vault.Ensure(ctx, db); err != nil {
		return err
	}
	store := order.NewStore(db)

	km := kafka.NewMetrics(proc.reg)
	cl, err := kgo.NewClient(append(kafka.BaseOpts("orders-projection", splitComma(brokers)),
		append(order.ProjectorOpts(), kgo.WithHooks(km))...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	// Lazy: the Orders API starts and takes orders while Temporal is down;
	// only cancellation needs it, and connects on first use.
	topts, err := temporalclient.Options(client.Options{HostPort: tempo, Namespace: tempoNS, Logger: sdklog.NewStructuredLogger(proc.log)})
	if err != nil {
		return err
	}
	tc, err := client.NewLazyClient(topts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()

	svc := &order.Service{Store: store, Log: proc.log, Canceller: &saga.Canceller{Client: tc}, Ready: db.Ping}
	mux := svc.Router()
	proc.access, proc.users = order.Access, true

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return (&order.Projector{Client: cl, Store: store, Log: proc.log, Metrics: km, Linger: projectionLinger}).Run(gctx)
	})
	g.Go(func() error { return proc.serve(gctx, mux) })
	return g.Wait()
}
