package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/postgres"
)

func serveNotifications(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve notifications", `The Notifications service: an asynq worker on the "notifications" queue that sends each
order notification on every channel the user has a contact for (email, push, SMS, through
built-in sandbox providers), retries only the channels that failed (6 attempts, 5 s then
10 s apart each) and holds a global rate limit across every worker process (Redis). HTTP:
GET /v1/notifications?orderId=, PUT /v1/contacts/{userId}, /healthz, /readyz, /metrics.`)
	proc := newService(fs, config.Notifications)
	host, _ := os.Hostname()
	var (
		conc, maxConn, seedUsers                        int
		pgURL, redisURL, schema, seedPrefix             string
		rateKey, procID, retryDelays                    string
		rate, failRate                                  float64
		checkEvery, delayedEvery, latency, stale, guard time.Duration
	)
	postgresURLFlag(fs, &pgURL)
	redisURLFlag(fs, &redisURL, "Redis URL of the queue and the rate limit (redis://host:port/db)")
	fs.StringVar(&schema, "schema", "STAMPEDE_NOTIFICATIONS_SCHEMA", notification.Schema, "PostgreSQL schema of contacts, deliveries and the sandbox's records")
	dbConnsFlag(fs, &maxConn, "STAMPEDE_NOTIFICATIONS_DB_CONNS")
	fs.IntVar(&conc, "concurrency", "STAMPEDE_NOTIFICATIONS_CONCURRENCY", 10, "tasks processed at once by this process")
	fs.Float64Var(&rate, "rate-limit", "STAMPEDE_NOTIFICATIONS_RATE_LIMIT", 50, "sends per second across every worker process sharing the Redis")
	fs.DurationVar(&guard, "rate-guard", "STAMPEDE_NOTIFICATIONS_RATE_GUARD", notification.DefaultRateGuard, "widens the limiter's 1 s window so scheduling delays between admission and the provider cannot crowd a window (costs guard/(1s+guard) of the rate)")
	fs.StringVar(&rateKey, "rate-limit-key", "STAMPEDE_NOTIFICATIONS_RATE_LIMIT_KEY", "stampede:notifications:rate", "Redis key of the shared rate limit")
	fs.DurationVar(&checkEvery, "task-check-interval", "STAMPEDE_NOTIFICATIONS_TASK_CHECK_INTERVAL", 20*time.Millisecond, "how often an idle worker polls the queue (bounds enqueue -> pick-up latency)")
	fs.DurationVar(&delayedEvery, "delayed-check-interval", "STAMPEDE_NOTIFICATIONS_DELAYED_CHECK_INTERVAL", time.Second, "how often due retries are moved back to the queue")
	fs.StringVar(&retryDelays, "retry-delays", "STAMPEDE_NOTIFICATIONS_RETRY_DELAYS", "5s,10s", "waits before the 2nd and 3rd attempts (shorten only for tests)")
	fs.DurationVar(&stale, "stale-claim", "STAMPEDE_NOTIFICATIONS_STALE_CLAIM", time.Minute, "a channel claimed longer ago than this by an attempt that never finished is sent again (same idempotency key)")
	fs.DurationVar(&latency, "sandbox-latency", "STAMPEDE_NOTIFICATIONS_SANDBOX_LATENCY", 20*time.Millisecond, "time each sandbox provider takes per message")
	fs.Float64Var(&failRate, "sandbox-failure-rate", "STAMPEDE_NOTIFICATIONS_SANDBOX_FAILURE_RATE", 0.05, "share of send attempts each sandbox provider rejects at random (0..1)")
	fs.IntVar(&seedUsers, "seed-users", "STAMPEDE_NOTIFICATIONS_SEED_USERS", 10000, "contacts created at start for users PREFIX1..PREFIXN, as the load generator names them (0: none)")
	fs.StringVar(&seedPrefix, "seed-prefix", "STAMPEDE_NOTIFICATIONS_SEED_PREFIX", "u-", "user id prefix of the seeded contacts")
	fs.StringVar(&procID, "process-id", "STAMPEDE_NOTIFICATIONS_PROCESS_ID", fmt.Sprintf("%s:%d", host, os.Getpid()), "this process's name in claims and the sandbox's records")
	if err := fs.Parse(args); err != nil {
		return err
	}
	delays, err := parseDelays(retryDelays)
	if err != nil {
		return err
	}
	sandbox := notification.SandboxConfig{Latency: latency, FailureRate: failRate, ProcessID: procID}
	if err := sandbox.Validate(); err != nil {
		return err
	}
	if stale < 15*time.Second {
		return fmt.Errorf("stale-claim: %s is shorter than 15s (a send may take 10s, and a claim must outlive it)", stale)
	}
	if conc <= 0 {
		return fmt.Errorf("concurrency: %d is not positive", conc)
	}
	redisOpt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("redis-url: %w", err)
	}
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("redis-url: %w", err)
	}
	log := proc.log
	metrics := notification.NewMetrics(proc.reg)
	metrics.RateLimit.Set(rate)

	db, err := postgres.Open(ctx, pgURL, schema, int32(maxConn), 30*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, schema, notification.Migrations()); err != nil {
		return err
	}
	store := notification.NewStore(db)
	if err := store.SeedContacts(ctx, seedPrefix, seedUsers); err != nil {
		return err
	}

	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	limiter, err := notification.NewLimiter(rdb, rateKey, rate, guard)
	if err != nil {
		return err
	}
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()

	worker := &notification.Worker{
		Ledger:     store,
		Senders:    notification.Sandboxes(sandbox, store),
		Limiter:    limiter,
		Metrics:    metrics,
		Log:        log,
		ProcessID:  procID,
		StaleClaim: stale,
	}
	srv := notification.NewServer(redisOpt, notification.ServerConfig{
		Concurrency:              conc,
		TaskCheckInterval:        checkEvery,
		DelayedTaskCheckInterval: delayedEvery,
		RetryDelays:              delays,
		Log:                      log,
	})

	svc := &notification.Service{Store: store, Inspector: insp, Log: log, Ready: func(ctx context.Context) error {
		if err := db.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}}
	mux := svc.Router()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Start(worker.Mux()); err != nil {
			return fmt.Errorf("notifications worker: %w", err)
		}
		log.Info("notifications worker started", "queue", notification.Queue, "concurrency", conc, "rate_limit", rate, "process_id", procID)
		<-gctx.Done()
		srv.Shutdown()
		return nil
	})
	g.Go(func() error {
		notification.WatchQueue(gctx, insp, metrics, 2*time.Second)
		return nil
	})
	g.Go(func() error { return proc.serve(gctx, mux) })
	return g.Wait()
}

// parseDelays parses "5s,10s".
func parseDelays(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("retry-delays: %q is not a list of durations like 5s,10s", s)
		}
		out = append(out, d)
	}
	return out, nil
}
