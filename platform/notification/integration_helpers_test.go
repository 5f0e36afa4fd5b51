//go:build integration

package notification_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/postgres"
)

// env is an isolated corner of the shared stack: its own Redis database
// (flushed before and after) and its own PostgreSQL schema (dropped after).
type env struct {
	schema   string
	redisURL string
	db       *pgxpool.Pool
	store    *notification.Store
	rdb      *redis.Client
	opt      asynq.RedisConnOpt
	client   *asynq.Client
	insp     *asynq.Inspector
}

func newEnv(t *testing.T, redisDB int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(config.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = fmt.Sprintf("/%d", redisDB)
	e := &env{schema: fmt.Sprintf("notifications_it_%d", rand.Uint32()), redisURL: u.String()}

	e.db, err = postgres.Open(ctx, config.PostgresURL(), e.schema, 20, 5*time.Second)
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		e.db.Exec(context.Background(), "DROP SCHEMA "+e.schema+" CASCADE")
		e.db.Close()
	})
	if err := postgres.Migrate(ctx, e.db, e.schema, notification.Migrations()); err != nil {
		t.Fatal(err)
	}
	e.store = notification.NewStore(e.db)

	ropts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	e.rdb = redis.NewClient(ropts)
	if err := e.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("the stack's Redis is not reachable (run with `make test`): %v", err)
	}
	if e.opt, err = asynq.ParseRedisURI(e.redisURL); err != nil {
		t.Fatal(err)
	}
	e.client = asynq.NewClient(e.opt)
	e.insp = asynq.NewInspector(e.opt)
	t.Cleanup(func() {
		e.client.Close()
		e.insp.Close()
		e.rdb.FlushDB(context.Background())
		e.rdb.Close()
	})
	return e
}

// startWorker runs an in-process worker until the test ends.
// Hooks may change the worker before it starts.
func (e *env) startWorker(t *testing.T, sandbox notification.SandboxConfig, rate float64, cfg notification.ServerConfig, hooks ...func(*notification.Worker)) *notification.Worker {
	t.Helper()
	lim, err := notification.NewLimiter(e.rdb, "stampede:notifications:rate", rate, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := &notification.Worker{
		Ledger:    e.store,
		Senders:   notification.Sandboxes(sandbox, e.store),
		Limiter:   lim,
		Metrics:   notification.NewMetrics(nil),
		Log:       log,
		ProcessID: sandbox.ProcessID,
	}
	for _, h := range hooks {
		h(w)
	}
	cfg.Log = log
	srv := notification.NewServer(e.opt, cfg)
	if err := srv.Start(w.Mux()); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return w
}

// contacts gives users prefix1..prefixN the addresses of channels.
func (e *env) contacts(t *testing.T, prefix string, n int, channels ...notification.Channel) {
	t.Helper()
	for i := 1; i <= n; i++ {
		c := notification.Contact{UserID: fmt.Sprintf("%s%d", prefix, i)}
		for _, ch := range channels {
			switch ch {
			case notification.Email:
				c.Email = c.UserID + "@example.test"
			case notification.Push:
				c.PushToken = "tok-" + c.UserID
			case notification.SMS:
				c.Phone = fmt.Sprintf("+1555%07d", i)
			}
		}
		if err := e.store.PutContact(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// enqueue enqueues n notifications for users prefix1..prefixUsers, 8 at a time.
func (e *env) enqueue(t *testing.T, run string, n int, prefix string, users int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				p := notification.Payload{
					OrderID:     fmt.Sprintf("%s-%05d", run, i),
					UserID:      fmt.Sprintf("%s%d", prefix, i%users+1),
					Template:    notification.Templates[i%len(notification.Templates)],
					RequestedAt: time.Now(),
				}
				if err := notification.Enqueue(context.Background(), e.client, p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitDone waits until n tasks are completed or archived and none is left to run.
func (e *env) waitDone(t *testing.T, n int, timeout time.Duration) *asynq.QueueInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		qi, err := e.insp.GetQueueInfo(notification.Queue)
		if err == nil && qi.Completed+qi.Archived >= n && qi.Pending+qi.Active+qi.Scheduled+qi.Retry == 0 {
			return qi
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: queue %+v (err %v), want %d completed or archived", timeout, qi, err, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func sortDurations(ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
}
