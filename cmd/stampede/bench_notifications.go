package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/postgres"
)

// NotificationsResult is what `stampede bench notifications` measured.
type NotificationsResult struct {
	Rate          int        `json:"rate"`
	Duration      string     `json:"duration"`
	Enqueued      int        `json:"enqueued"`
	Delivered     int        `json:"delivered"`
	Undelivered   int        `json:"undelivered"` // no channel delivered within the wait (skipped, dead or late)
	EnqueueToSend stats.Dist `json:"enqueueToFirstDelivered"`
}

// benchNotifications enqueues notifications at a constant rate on the
// stack's queue and reads, from the Notifications service's own table,
// how long each took from enqueue to its first channel delivered.
func benchNotifications(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede bench notifications", `Enqueue notifications at a constant (open-loop) rate on the running stack's "notifications"
queue and report enqueue -> first channel delivered (p50/p90/p99/max), read from the service's
notifications table. Keep rate x channels below the service's rate limit (default 50 sends/s,
3 channels per seeded user) to measure latency rather than the limit.`)
	var (
		rate, users             int
		duration, wait          time.Duration
		out, redisURL, pgURL, s string
	)
	fs.IntVar(&rate, "rate", "", 10, "notifications per second")
	fs.DurationVar(&duration, "duration", "", 20*time.Second, "how long to enqueue")
	fs.DurationVar(&wait, "wait", "", 30*time.Second, "how long to wait for the last deliveries")
	fs.IntVar(&users, "users", "", 1000, "user ids u-1..u-N (seeded by the service)")
	fs.StringVar(&out, "out", "", "results/bench", "directory for notifications.md and notifications.json")
	redisURLFlag(fs, &redisURL, "Redis URL of the queue")
	postgresURLFlag(fs, &pgURL)
	fs.StringVar(&s, "schema", "STAMPEDE_NOTIFICATIONS_SCHEMA", notification.Schema, "schema of the Notifications service")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if rate < 1 || rate > 1000 {
		return fmt.Errorf("--rate %d: want 1..1000", rate)
	}
	if duration < time.Second {
		return fmt.Errorf("--duration %s: want at least 1s", duration)
	}
	if users < 1 {
		return fmt.Errorf("--users %d: want at least 1", users)
	}
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("redis-url: %w", err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	db, err := postgres.Open(ctx, pgURL, s, 4, 10*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()

	run := fmt.Sprintf("bench-%d", time.Now().Unix())
	fmt.Printf("bench notifications: %d/s for %s (run %s)\n", rate, duration, run)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(duration)
	n := 0
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		p := notification.Payload{
			OrderID:     fmt.Sprintf("%s-%06d", run, n),
			UserID:      fmt.Sprintf("u-%d", n%users+1),
			Template:    notification.Templates[n%len(notification.Templates)],
			RequestedAt: time.Now(),
		}
		if err := notification.Enqueue(ctx, client, p); err != nil {
			return err
		}
		n++
	}

	var delivered int
	deadline := time.Now().Add(wait)
	for {
		if err := db.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE order_id LIKE $1 AND first_delivered_at IS NOT NULL`,
			run+"-%").Scan(&delivered); err != nil {
			return fmt.Errorf("read deliveries: %w", err)
		}
		if delivered >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	rows, err := db.Query(ctx, `SELECT extract(epoch FROM first_delivered_at - requested_at) FROM notifications
		WHERE order_id LIKE $1 AND first_delivered_at IS NOT NULL`, run+"-%")
	if err != nil {
		return fmt.Errorf("read deliveries: %w", err)
	}
	var ds []time.Duration
	for rows.Next() {
		var sec float64
		if err := rows.Scan(&sec); err != nil {
			rows.Close()
			return err
		}
		ds = append(ds, time.Duration(sec*float64(time.Second)))
	}
	rows.Close()
	res := NotificationsResult{Rate: rate, Duration: duration.String(), Enqueued: n, Delivered: len(ds), Undelivered: n - len(ds), EnqueueToSend: stats.Summarise(ds)}

	host, _ := os.Hostname()
	md := fmt.Sprintf(`# Notifications benchmark

Command: `+"`stampede bench notifications --rate %d --duration %s`"+` (run %s on %s, %d CPUs)

| figure | n | p50 | p90 | p99 | max |
|---|---|---|---|---|---|
| enqueue -> first channel delivered | %s |

Enqueued %d, delivered %d, not delivered within %s of the last enqueue: %d (users without any
contact are skipped; see `+"`stampede notifications dead`"+` for the dead ones).
`, rate, duration, time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(), row(res.EnqueueToSend),
		res.Enqueued, res.Delivered, wait, res.Undelivered)
	if err := writeResults(out, "notifications", md, res); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}
