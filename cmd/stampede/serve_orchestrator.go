package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/orchestrator"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/temporalclient"
	"github.com/stampede-dev/stampede/platform/web"
)

func serveOrchestrator(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve orchestrator", `One member of the orchestrator consumer group. It consumes the orders topic and starts
workflow order-{orderId} on task queue order-processing for every order.created (a workflow
that already exists counts as started), and consumes the shipping topic to send the
delivered signal for every shipment.delivered. Offsets are committed only after Temporal
accepted the call; an event that cannot be decoded or validated goes to orders.dlq with the
reason in the dlq-reason header; while Temporal is unreachable the partition pauses and
retries with backoff, never skipping a record. Partitions are processed concurrently, each
in order. Serves /metrics, /healthz and /readyz on 127.0.0.1.`)
	var (
		port        int
		group       string
		brokers     string
		temporal    string
		namespace   string
		instance    string
		protocol    string
		callTimeout time.Duration
		retryMax    time.Duration
		topics      [3]string
		session     time.Duration
		commitEvery time.Duration
		slowRecord  time.Duration
	)
	portFlag(fs, &port, config.Orchestrator, "port of /metrics, /healthz and /readyz on 127.0.0.1 (members take 8091, 8092, ...)")
	fs.StringVar(&group, "group", "STAMPEDE_ORCHESTRATOR_GROUP", orchestrator.Group, "Kafka consumer group")
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers")
	temporalFlags(fs, &temporal, &namespace, "Temporal frontend host:port")
	fs.StringVar(&instance, "instance", "STAMPEDE_ORCHESTRATOR_INSTANCE", "1", "member name, part of the Kafka client id and of every log line")
	fs.StringVar(&protocol, "group-protocol", "STAMPEDE_ORCHESTRATOR_GROUP_PROTOCOL", "consumer",
		"consumer group protocol: consumer (KIP-848, the broker assigns; session timeout is the broker's group.consumer.session.timeout.ms) or classic (client-side cooperative-sticky)")
	fs.DurationVar(&session, "session-timeout", "STAMPEDE_ORCHESTRATOR_SESSION_TIMEOUT", 3*time.Second,
		"how long a member may miss heartbeats before its partitions move to the others (KIP-848: set as the group's consumer.session.timeout.ms; 0 keeps the broker's). Heartbeats every sixth of it, at least 500 ms")
	fs.DurationVar(&callTimeout, "call-timeout", "STAMPEDE_ORCHESTRATOR_CALL_TIMEOUT", 5*time.Second, "timeout of one Temporal start or signal call")
	fs.DurationVar(&retryMax, "retry-max", "STAMPEDE_ORCHESTRATOR_RETRY_MAX", 5*time.Second, "backoff ceiling while Temporal is unreachable (starts at 100 ms, doubles)")
	fs.DurationVar(&commitEvery, "commit-gap", "STAMPEDE_ORCHESTRATOR_COMMIT_GAP", 2*time.Millisecond,
		"processed offsets are committed right after processing, at most one commit per this gap (marks in between go out together); committed offsets are what the group's lag is measured from")
	fs.DurationVar(&slowRecord, "slow-record", "STAMPEDE_ORCHESTRATOR_SLOW_RECORD", 50*time.Millisecond,
		"log a record that took this long or longer from its produce to being handled, with where the time went (Kafka delivery, the partition's queue, the Temporal call), and a commit that took as long; 0 logs none")
	fs.StringVar(&topics[0], "orders-topic", "STAMPEDE_ORCHESTRATOR_ORDERS_TOPIC", event.TopicOrders, "topic of order.created events (tests use their own)")
	fs.StringVar(&topics[1], "shipping-topic", "STAMPEDE_ORCHESTRATOR_SHIPPING_TOPIC", event.TopicShipping, "topic of shipment.delivered events")
	fs.StringVar(&topics[2], "dlq-topic", "STAMPEDE_ORCHESTRATOR_DLQ_TOPIC", event.TopicOrdersDLQ, "dead-letter topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if protocol != "consumer" && protocol != "classic" {
		return fmt.Errorf("--group-protocol %q: want consumer or classic", protocol)
	}
	if group == "" {
		return fmt.Errorf("--group: must not be empty")
	}
	if slowRecord < 0 {
		return fmt.Errorf("--slow-record %s: must not be negative", slowRecord)
	}
	if slowRecord == 0 {
		slowRecord = -1 // Config: negative turns it off, zero takes the default
	}
	log := telemetry.NewLogger("orchestrator", nil).With("instance", instance)
	reg := telemetry.NewRegistry()
	km := kafka.NewMetrics(reg)
	om := orchestrator.NewMetrics(reg)

	// The Temporal SDK's own client metrics (request rate, latency, errors).
	sdkMetrics, closeMetrics, err := saga.SDKMetricsHandler(reg, func(err error) { log.Warn("temporal sdk metric", "err", err) })
	if err != nil {
		return fmt.Errorf("temporal sdk metrics: %w", err)
	}
	defer closeMetrics.Close()

	// Lazy: a member starts (and waits, paused) while Temporal is still down.
	topts, err := temporalclient.Options(client.Options{
		HostPort:       temporal,
		Namespace:      namespace,
		Logger:         tlog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		MetricsHandler: sdkMetrics,
	})
	if err != nil {
		return err
	}
	tc, err := client.NewLazyClient(topts)
	if err != nil {
		return fmt.Errorf("temporal client for %s: %w", temporal, err)
	}
	defer tc.Close()
	tmp := &orchestrator.Temporal{Client: tc}

	cons := orchestrator.New(orchestrator.Config{
		Group:          group,
		CallTimeout:    callTimeout,
		RetryMax:       retryMax,
		ServerAssigned: protocol == "consumer",
		OrdersTopic:    topics[0],
		ShippingTopic:  topics[1],
		DLQTopic:       topics[2],
		SessionTimeout: session,
		CommitGap:      commitEvery,
		SlowRecord:     slowRecord,
	}, tmp, tmp, log, km, om)
	cl, err := kgo.NewClient(append(kafka.BaseOpts("orchestrator-"+instance, splitComma(brokers)),
		append(cons.Opts(), kgo.WithHooks(km))...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	mux := telemetry.AdminMux(reg)
	mux.HandleFunc("GET "+web.PathReady, func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := cl.Ping(rctx); err != nil {
			web.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "kafka": err.Error()})
			return
		}
		if _, err := tc.CheckHealth(rctx, &client.CheckHealthRequest{}); err != nil {
			web.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "temporal": err.Error()})
			return
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cons.Run(gctx, cl) })
	g.Go(func() error {
		return web.Serve(gctx, config.ListenAddr(port), mux, 5*time.Second)
	})
	log.Info("orchestrator running", "group", group, "protocol", protocol, "port", port, "temporal", temporal)
	return g.Wait()
}
