package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/temporalclient"
	"github.com/stampede-dev/stampede/platform/web"
)

// Retry pacing defaults, per worker (the stack runs two). A fixed 4 retries
// a second drained the sagas that waited out an outage at the same speed
// through the 20/s peak of the short chaos profile, and half the seconds
// over its lag gate fell there (README: Chaos). With a saga budget of 10 a
// second (the peak's share of each worker), retries get what new sagas
// leave of it: 1/s at the peak, most of the 10 once it has passed.
const (
	defaultRetryRate  = 1
	defaultRetryBurst = 4
	defaultSagaBudget = 10
)

func serveWorker(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve worker", `The order saga worker: runs OrderWorkflow on task queue order-processing. Each order
reserves inventory, charges payment, creates the shipment, notifies, waits for delivery
(signal or timer) and notifies again; on a business failure, a cancel, or an
infrastructure outage longer than the outage budget it compensates every step in reverse
order, retrying each compensation until it succeeds. Service calls, status events
(Kafka topic orders) and notifications (asynq on Redis) run as local activities.
Serves /metrics (saga and Temporal SDK metrics) and /healthz on its port.

Failpoints (STAMPEDE_FAILPOINTS) break the platform on purpose, to prove stampede chaos
fails it (stampede chaos selftest): saga.skip-refund (the refund claims success without
refunding), saga.compensation-give-up, saga.compensation-delay, saga.charge-fresh-key,
saga.charge-off-by-one, saga.short-budget.`)
	var (
		port         int
		temporalAddr string
		namespace    string
		inventoryURL string
		paymentsURL  string
		shippingURL  string
		brokers      string
		redisURL     string
		budget       time.Duration
		deliveryWait time.Duration
		wfTasks      int
		localActs    int
		pollers      int
		retryRate    float64
		retryBurst   int
		sagaBudget   float64
	)
	portFlag(fs, &port, config.Worker, "port of /metrics and /healthz on 127.0.0.1")
	temporalFlags(fs, &temporalAddr, &namespace, "Temporal frontend host:port")
	fs.StringVar(&inventoryURL, "inventory-url", "STAMPEDE_INVENTORY_URL", config.ServiceURL(config.Inventory), "base URL of the Inventory service")
	fs.StringVar(&paymentsURL, "payments-url", "STAMPEDE_PAYMENTS_URL", config.ServiceURL(config.Payments), "base URL of the Payments service (through toxiproxy by default)")
	fs.StringVar(&shippingURL, "shipping-url", "STAMPEDE_SHIPPING_URL", config.ServiceURL(config.Shipping), "base URL of the Shipping service")
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers (status events, analytics outcomes)")
	redisURLFlag(fs, &redisURL, "Redis URL of the notification queue")
	fs.DurationVar(&budget, "outage-budget", "STAMPEDE_OUTAGE_BUDGET", saga.DefaultOutageBudget, "how long a step retries an unavailable service before the order is compensated (used when the workflow input sets none)")
	fs.DurationVar(&deliveryWait, "delivery-wait", "STAMPEDE_DELIVERY_WAIT", saga.DefaultDeliveryWait, "longest wait for the delivered signal (used when the workflow input sets none)")
	fs.IntVar(&wfTasks, "workflow-tasks", "STAMPEDE_WORKER_WORKFLOW_TASKS", 2000,
		"concurrent workflow tasks; a saga waiting out an outage holds one (its step retries inside the open task),\n"+
			"so this bounds how many waiting sagas a worker keeps besides new ones")
	fs.IntVar(&localActs, "local-activities", "STAMPEDE_WORKER_LOCAL_ACTIVITIES", 1000, "concurrent local activities (service calls, publishes, notifications)")
	fs.IntVar(&pollers, "pollers", "STAMPEDE_WORKER_POLLERS", 4, "workflow task pollers")
	fs.Float64Var(&retryRate, "retry-rate", "STAMPEDE_WORKER_RETRY_RATE", defaultRetryRate,
		"retries of failed forward steps this worker resumes per second at the least (first attempts and compensations never wait;\n"+
			"0: no bound). After an outage it drains the sagas that waited at a bounded rate instead of all at once, so new orders keep their latency")
	fs.Float64Var(&sagaBudget, "saga-budget", "STAMPEDE_WORKER_SAGA_BUDGET", defaultSagaBudget,
		"sagas per second this worker aims at in all, new and resumed: retries get what the new sagas of the last 2 s leave of it,\n"+
			"never less than --retry-rate, so a backlog drains slowly through a peak and fast after it; 0: retries at --retry-rate always")
	fs.IntVar(&retryBurst, "retry-burst", "STAMPEDE_WORKER_RETRY_BURST", defaultRetryBurst, "retries that may go at once before the retry rate applies")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if budget <= 0 {
		return fmt.Errorf("--outage-budget %s: want a positive duration", budget)
	}
	if failpoint.Armed(saga.FailShortBudget) {
		budget = saga.ShortBudget // the defect: the budget as configured never reaches the saga
	}
	if retryRate < 0 {
		return fmt.Errorf("--retry-rate %g: must not be negative", retryRate)
	}
	if sagaBudget < 0 {
		return fmt.Errorf("--saga-budget %g: must not be negative", sagaBudget)
	}
	if retryBurst < 1 {
		return fmt.Errorf("--retry-burst %d: want at least 1", retryBurst)
	}
	if deliveryWait <= 0 {
		return fmt.Errorf("--delivery-wait %s: want a positive duration", deliveryWait)
	}
	log := telemetry.NewLogger("worker", nil)
	reg := telemetry.NewRegistry()
	metrics := saga.NewMetrics(reg)
	km := kafka.NewMetrics(reg)

	sdkMetrics, closeMetrics, err := saga.SDKMetricsHandler(reg, func(err error) { log.Warn("temporal sdk metric", "err", err) })
	if err != nil {
		return fmt.Errorf("temporal sdk metrics: %w", err)
	}
	defer closeMetrics.Close()

	producer, err := kgo.NewClient(append(kafka.BaseOpts("saga-worker", splitComma(brokers)),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.WithHooks(km),
	)...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	defer producer.Close()

	redisOpt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("--redis-url %q: %w", config.RedactURL(redisURL), err)
	}
	tasks := asynq.NewClient(redisOpt)
	defer tasks.Close()

	// The services take the stack's service token. A 401 (a worker left
	// running across a rotation) is retried as an outage is, within the
	// outage budget: restarting the worker lets its sagas go on.
	hc, err := web.ServiceClient(&http.Client{Transport: &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}})
	if err != nil {
		return err
	}
	acts := &saga.Activities{
		InventoryURL: inventoryURL,
		PaymentsURL:  paymentsURL,
		ShippingURL:  shippingURL,
		HTTP:         hc,
		Producer:     producer,
		Tasks:        tasks,
		Metrics:      metrics,
		Pacer:        saga.NewPacer(retryRate, retryBurst).WithSagaBudget(sagaBudget),
		Log:          log,
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info("worker admin listening", "addr", config.ListenAddr(port))
		return web.Serve(gctx, config.ListenAddr(port), telemetry.AdminMux(reg), 5*time.Second)
	})
	g.Go(func() error {
		c, err := dialTemporal(gctx, log, client.Options{
			HostPort:       temporalAddr,
			Namespace:      namespace,
			Logger:         sdklog.NewStructuredLogger(log),
			MetricsHandler: sdkMetrics,
		})
		if err != nil {
			if gctx.Err() != nil {
				return nil // stopped before Temporal answered
			}
			return err
		}
		defer c.Close()
		w := saga.NewWorker(c, &saga.Workflow{OutageBudget: budget, DeliveryWait: deliveryWait}, acts, worker.Options{
			MaxConcurrentWorkflowTaskExecutionSize:  wfTasks,
			MaxConcurrentLocalActivityExecutionSize: localActs,
			MaxConcurrentWorkflowTaskPollers:        pollers,
			// Let in-flight local activities finish (and publish) before the
			// producer and the queue client close; whatever is cut off is
			// re-run by the next worker from the last completed workflow task.
			WorkerStopTimeout: 10 * time.Second,
		})
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		log.Info("worker running", "task_queue", saga.TaskQueue, "temporal", temporalAddr, "namespace", namespace,
			"inventory", inventoryURL, "payments", paymentsURL, "shipping", shippingURL,
			"outage_budget", budget.String(), "delivery_wait", deliveryWait.String())
		<-gctx.Done()
		w.Stop()
		return nil
	})
	return g.Wait()
}

// dialTemporal connects to Temporal, retrying until it answers or ctx ends,
// so a worker started before the server waits for it instead of exiting.
func dialTemporal(ctx context.Context, log *slog.Logger, opts client.Options) (client.Client, error) {
	opts, err := temporalclient.Options(opts)
	if err != nil {
		return nil, err
	}
	delay := time.Second
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), err)
		}
		log.Warn("temporal not reachable; retrying", "address", opts.HostPort, "err", err, "in", delay.String())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}
