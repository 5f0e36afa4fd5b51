package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

// relaySchemas are the schemas whose outbox the relay publishes by default.
const relaySchemas = "orders,inventory,payments,shipping"

func serveRelay(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve relay", `The transactional outbox relay. It publishes the committed outbox rows of every schema,
in id order per schema, through one idempotent, transactional producer, then marks them
sent. Woken by LISTEN/NOTIFY (a polling fallback): rows of an --urgent schema are published
at once, the others within --linger, and whatever is waiting in every schema then goes
out in the same Kafka transaction (one transaction per order instead of one per service). Several relays may run: one instance per
schema leads (advisory lock), the others stand by.

Failpoints for crash tests (STAMPEDE_FAILPOINTS): relay.before-publish,
relay.before-commit, relay.before-mark.`)
	var (
		port        int
		pgURL       string
		brokers     string
		schemas     string
		compression string
		batch       int
		poll        time.Duration
		linger      time.Duration
		urgent      string
		retention   time.Duration
		instance    string
	)
	portFlag(fs, &port, config.Relay, "port of /metrics and /healthz on 127.0.0.1")
	postgresURLFlag(fs, &pgURL)
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers")
	fs.StringVar(&schemas, "schemas", "STAMPEDE_RELAY_SCHEMAS", relaySchemas, "comma-separated schemas whose outbox to publish")
	fs.StringVar(&compression, "compression", "STAMPEDE_RELAY_COMPRESSION", "none", "record batch compression: gzip, snappy, lz4, zstd or none (on loopback compression only costs CPU, in the relay, the broker and every consumer; across a network lz4 or zstd)")
	fs.IntVar(&batch, "batch", "STAMPEDE_RELAY_BATCH", 500, "rows per Kafka transaction")
	fs.DurationVar(&poll, "poll", "STAMPEDE_RELAY_POLL", time.Second, "polling fallback when no notification arrives")
	fs.DurationVar(&linger, "linger", "STAMPEDE_RELAY_LINGER", 100*time.Millisecond, "longest a row of a schema not in --urgent waits for others to join its Kafka transaction")
	fs.StringVar(&urgent, "urgent", "STAMPEDE_RELAY_URGENT", "orders", "comma-separated schemas whose rows are published at once (someone waits on them: a new order starts its saga)")
	fs.DurationVar(&retention, "retention", "STAMPEDE_RELAY_RETENTION", time.Hour, "how long sent rows are kept before they are deleted")
	fs.StringVar(&instance, "instance", "STAMPEDE_RELAY_INSTANCE", "1", "instance name, part of the transactional id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	codec, err := compressionCodec(compression)
	if err != nil {
		return err
	}
	if batch < 1 {
		return fmt.Errorf("--batch %d: want at least 1", batch)
	}
	if linger < 0 || linger > time.Second {
		return fmt.Errorf("--linger %s: want 0..1s", linger)
	}
	log := telemetry.NewLogger("relay", nil)
	reg := telemetry.NewRegistry()
	metrics := outbox.NewMetrics(reg)
	km := kafka.NewMetrics(reg)

	cl, err := kgo.NewClient(append(kafka.BaseOpts("relay", splitComma(brokers)),
		kgo.TransactionalID("stampede-relay-"+instance),
		kgo.TransactionTimeout(30*time.Second),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.WithHooks(km),
	)...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	defer cl.Close()
	relay := &outbox.Relay{Producer: cl, Log: log, Metrics: metrics, Batch: batch, Poll: poll}
	urgentSet := map[string]bool{}
	for _, s := range splitComma(urgent) {
		urgentSet[s] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	var stores []*outbox.PGStore
	var claimPool *pgxpool.Pool
	for _, schema := range splitComma(schemas) {
		db, err := postgres.Open(ctx, pgURL, schema, 4, 30*time.Second)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := outbox.EnsureTable(ctx, db); err != nil {
			return fmt.Errorf("outbox of %s: %w", schema, err)
		}
		store := outbox.NewPGStore(db, schema, log)
		defer store.Close()
		stores = append(stores, store)
		if claimPool == nil {
			claimPool = db // tables are schema-qualified: any schema's pool claims for all
		}
		src := outbox.Source{Name: schema, Store: store, Linger: linger}
		if urgentSet[schema] {
			src.Linger = 0
		}
		relay.Sources = append(relay.Sources, src)
		g.Go(func() error { store.Maintain(gctx, metrics, retention); return nil })
	}
	relay.Claimer = outbox.NewPGGroup(claimPool, stores...)
	g.Go(func() error { return relay.Run(gctx) })
	g.Go(func() error {
		return web.Serve(gctx, config.ListenAddr(port), telemetry.AdminMux(reg), 5*time.Second)
	})
	log.Info("relay running", "schemas", schemas, "compression", compression)
	return g.Wait()
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want gzip, snappy, lz4, zstd or none", name)
}
