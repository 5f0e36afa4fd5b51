package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/restchain"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/temporalclient"
	"github.com/stampede-dev/stampede/platform/vault"
	"github.com/stampede-dev/stampede/platform/web"
)

func serveOrders(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve orders", `The Orders API: POST /v1/orders commits the order and its events (outbox) in one
PostgreSQL transaction and answers 202; GET /v1/orders/{id} shows its status and history,
projected from the saga's status events; POST /v1/orders/{id}/cancel asks the saga to cancel.`)
	proc := newPGService(fs, config.Orders, "STAMPEDE_ORDERS_DB_CONNS")
	var brokers, tempo, tempoNS, chain, inventoryURL, paymentsURL, shippingURL string
	var projectionLinger time.Duration
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers")
	fs.StringVar(&chain, "chain", restchain.Env, "", "\"rest\": the REST-chain baseline of stampede chaos --platform rest (the request calls Inventory, Payments, Shipping; no outbox, no saga); never the platform")
	fs.StringVar(&inventoryURL, "inventory-url", "STAMPEDE_INVENTORY_URL", config.ServiceURL(config.Inventory), "base URL of Inventory (--chain rest only)")
	fs.StringVar(&paymentsURL, "payments-url", "STAMPEDE_PAYMENTS_URL", config.ServiceURL(config.Payments), "base URL of Payments, through toxiproxy by default (--chain rest only)")
	fs.StringVar(&shippingURL, "shipping-url", "STAMPEDE_SHIPPING_URL", config.ServiceURL(config.Shipping), "base URL of Shipping (--chain rest only)")
	fs.DurationVar(&projectionLinger, "projection-linger", "STAMPEDE_ORDERS_PROJECTION_LINGER", order.DefaultProjectionLinger,
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
	switch {
	case chain == restchain.Mode:
		// The baseline the harness compares against, never the platform:
		// no events, the other services called inside the request.
		store.Direct = func(context.Context, []outbox.Message) {}
		hc, err := web.ServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}})
		if err != nil {
			return err
		}
		rc := &restchain.Chain{InventoryURL: inventoryURL, PaymentsURL: paymentsURL, ShippingURL: shippingURL, HTTP: hc}
		svc.Chain = func(ctx context.Context, id string, req order.CreateRequest, cid string) (string, error) {
			status, reason, err := rc.Run(ctx, id, req, cid)
			if err != nil {
				return "", err
			}
			return status, store.SetStatus(context.WithoutCancel(ctx), id, status, reason, time.Now())
		}
		proc.log.Warn("REST-chain baseline: orders call inventory, payments and shipping in the request, with no outbox and no saga", "env", restchain.Env)
	case chain != "":
		return fmt.Errorf("--chain %q: want %q or nothing", chain, restchain.Mode)
	case failpoint.Armed(order.FailPublishOutsideOutbox):
		store.Direct = func(ctx context.Context, msgs []outbox.Message) {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			var recs []*kgo.Record
			for _, m := range msgs {
				b, _ := json.Marshal(m.Envelope)
				recs = append(recs, &kgo.Record{Topic: m.Topic, Key: []byte(m.Key), Value: b, Headers: kafka.EventHeaders(m.Envelope)})
			}
			if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
				proc.log.Warn("failpoint "+order.FailPublishOutsideOutbox+": events of a committed order not published", "err", err)
			}
		}
	}
	mux := svc.Router()
	proc.access, proc.users = order.Access, true

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return (&order.Projector{Client: cl, Store: store, Log: proc.log, Metrics: km, Linger: projectionLinger}).Run(gctx)
	})
	g.Go(func() error { return proc.serve(gctx, mux) })
	return g.Wait()
}
