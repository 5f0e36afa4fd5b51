package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/telemetry"
)

// ErrInFlight is a retry of a notification finding one of its channels
// claimed by another attempt that may still be sending it. The task is run
// again later without using up an attempt (IsFailure).
var ErrInFlight = errors.New("notification: a channel is being sent by another attempt")

// RateLimiter makes a send wait for its turn; it returns how long it waited.
type RateLimiter interface {
	Wait(ctx context.Context) (time.Duration, error)
}

// Worker sends notification tasks on every channel of the user: it claims
// each pending or failed channel in the Ledger before sending it, so a retry
// re-sends only the channels that failed and a delivered channel is never
// sent again. A crash between a provider's accept and the ledger's record
// leaves the claim behind; after StaleClaim the channel is sent again with
// the same idempotency key, which the provider recognises as a duplicate.
type Worker struct {
	Ledger      Ledger
	Senders     map[Channel]Sender
	Limiter     RateLimiter // nil: no limit
	Metrics     *Metrics
	Log         *slog.Logger
	ProcessID   string        // recorded in claims
	StaleClaim  time.Duration // default 1 minute; must exceed SendTimeout
	SendTimeout time.Duration // default 10 seconds
}

// Mux routes each template's task type to the worker.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	for _, t := range Templates {
		mux.Handle(t, w)
	}
	return mux
}

// ProcessTask implements asynq.Handler.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := DecodePayload(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry) // a bad payload never gets better
	}
	if p.Template != t.Type() {
		return fmt.Errorf("notification: task type %q carries template %q: %w", t.Type(), p.Template, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		maxRetry = MaxAttempts - 1
	}
	id, _ := asynq.GetTaskID(ctx)
	return w.Handle(ctx, p, Attempt{TaskID: id, Number: retried + 1, Final: retried >= maxRetry})
}

// Attempt is one run of a task.
type Attempt struct {
	TaskID string
	Number int  // 1-based
	Final  bool // no retry follows a failure
}

// Handle sends p on every channel not yet delivered or skipped. It fails
// when a channel failed, so the task is retried for that channel only.
func (w *Worker) Handle(ctx context.Context, p Payload, a Attempt) error {
	ctx = telemetry.WithCorrelationID(ctx, p.CorrelationID)
	contact, deliveries, skipped, err := w.Ledger.Open(ctx, p)
	if err != nil {
		return err
	}
	for _, ch := range skipped {
		w.Metrics.Sends.WithLabelValues(string(ch), p.Template, OutcomeSkipped).Inc()
	}
	owner := fmt.Sprintf("%s/%s#%d", w.ProcessID, a.TaskID, a.Number)

	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		failed []string
		busy   bool
	)
	for _, d := range deliveries {
		if d.Outcome == OutcomeDelivered || d.Outcome == OutcomeSkipped {
			continue
		}
		wg.Add(1)
		go func(ch Channel) {
			defer wg.Done()
			err := w.deliver(ctx, p, contact, ch, owner)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrInFlight) {
				busy = true
				return
			}
			failed = append(failed, err.Error())
		}(d.Channel)
	}
	if a.Number > 1 && failpoint.Armed(FailResendOnRetry) {
		w.resendDelivered(ctx, p, contact, deliveries, a)
	}
	wg.Wait()

	var status string
	switch {
	case len(failed) > 0 && a.Final:
		status = StatusDead
	case len(failed) > 0 || busy:
		status = StatusRetrying
	default:
		status = StatusDelivered
		if allSkipped(deliveries) {
			status = StatusSkipped
		}
	}
	if err := w.Ledger.Finish(ctx, p.OrderID, p.Template, status); err != nil {
		return err
	}
	switch {
	case len(failed) > 0:
		w.Log.WarnContext(ctx, "notification channels failed", "order_id", p.OrderID, "template", p.Template,
			"attempt", a.Number, "final", a.Final, "errors", failed)
		return fmt.Errorf("notification %s: %d channel(s) failed: %s", TaskID(p.OrderID, p.Template), len(failed), strings.Join(failed, "; "))
	case busy:
		return fmt.Errorf("notification %s: %w", TaskID(p.OrderID, p.Template), ErrInFlight)
	}
	return nil
}

// resendDelivered is FailResendOnRetry: a retried task sends again the
// channels an earlier attempt delivered, under a key of its own attempt, so
// the provider cannot tell it is the same message.
func (w *Worker) resendDelivered(ctx context.Context, p Payload, c Contact, ds []Delivery, a Attempt) {
	for _, d := range ds {
		sender, ok := w.Senders[d.Channel]
		to := c.Address(d.Channel)
		if d.Outcome != OutcomeDelivered || !ok || to == "" {
			continue
		}
		m := render(p, d.Channel, to)
		m.IdempotencyKey += fmt.Sprintf(":attempt-%d", a.Number)
		err := sender.Send(ctx, m)
		w.Log.WarnContext(ctx, "failpoint "+FailResendOnRetry+": delivered channel sent again", "order_id", p.OrderID, "template", p.Template,
			"channel", d.Channel, "attempt", a.Number, "err", err)
	}
}

func allSkipped(ds []Delivery) bool {
	for _, d := range ds {
		if d.Outcome != OutcomeSkipped {
			return false
		}
	}
	return true
}

// deliver sends one channel if this attempt can claim it.
func (w *Worker) deliver(ctx context.Context, p Payload, c Contact, ch Channel, owner string) error {
	k := deliveryKey{OrderID: p.OrderID, Template: p.Template, Channel: ch}
	stale := w.StaleClaim
	if stale <= 0 {
		stale = time.Minute
	}
	claimed, outcome, err := w.Ledger.Claim(ctx, k, owner, stale)
	if err != nil {
		return err
	}
	if !claimed {
		if outcome == OutcomeSending {
			return ErrInFlight
		}
		return nil // delivered or skipped by another attempt meanwhile
	}
	// From here the claim must be settled, even when ctx is cancelled.
	settle := func(outcome, lastErr string) (bool, error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return w.Ledger.Settle(sctx, k, owner, outcome, lastErr)
	}
	to := c.Address(ch)
	if to == "" { // the contact was removed since the delivery was created
		w.Metrics.Sends.WithLabelValues(string(ch), p.Template, OutcomeSkipped).Inc()
		_, err := settle(OutcomeSkipped, "")
		return err
	}
	sender, ok := w.Senders[ch]
	if !ok {
		err := fmt.Errorf("%s: no provider configured", ch)
		settle(OutcomeFailed, err.Error())
		return err
	}
	if w.Limiter != nil {
		waited, err := w.Limiter.Wait(ctx)
		if waited > 0 {
			w.Metrics.RateLimited.Inc()
		}
		if err != nil {
			settle(OutcomeFailed, err.Error())
			return fmt.Errorf("%s: %w", ch, err)
		}
	}
	timeout := w.SendTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	err = sender.Send(sctx, render(p, ch, to))
	cancel()
	w.Metrics.SendDuration.WithLabelValues(string(ch)).Observe(time.Since(start).Seconds())
	if err != nil {
		w.Metrics.Sends.WithLabelValues(string(ch), p.Template, OutcomeFailed).Inc()
		if _, serr := settle(OutcomeFailed, err.Error()); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	w.Metrics.Sends.WithLabelValues(string(ch), p.Template, OutcomeDelivered).Inc()
	first, err := settle(OutcomeDelivered, "")
	if err != nil {
		// The provider has it; the claim goes stale and the resend is a duplicate it ignores.
		return err
	}
	if first && !p.RequestedAt.IsZero() {
		w.Metrics.EnqueueToFirst.Observe(time.Since(p.RequestedAt).Seconds())
	}
	return nil
}

// ServerConfig configures the asynq server of the worker.
type ServerConfig struct {
	Concurrency int
	// TaskCheckInterval is how often an idle worker polls the queue: it
	// bounds the enqueue -> pick-up latency (asynq's default is 1 s).
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval is how often retries that are due are moved back to the queue.
	DelayedTaskCheckInterval time.Duration
	// RetryDelays[n] is the wait before retry n+1 (default 5 s, then 10 s).
	// asynq schedules retries to the second.
	RetryDelays     []time.Duration
	ShutdownTimeout time.Duration
	Log             *slog.Logger
}

// DefaultRetryDelays are the waits before the second and third attempts.
var DefaultRetryDelays = []time.Duration{5 * time.Second, 10 * time.Second}

// RetryDelay returns asynq's retry delay function for delays: retry n waits
// delays[n] (the last one repeats); a task that only found a channel in
// flight elsewhere comes back after a second.
func RetryDelay(delays []time.Duration) asynq.RetryDelayFunc {
	if len(delays) == 0 {
		delays = DefaultRetryDelays
	}
	return func(n int, err error, _ *asynq.Task) time.Duration {
		if errors.Is(err, ErrInFlight) {
			return time.Second
		}
		n = max(0, min(n, len(delays)-1))
		return delays[n]
	}
}

// IsFailure reports whether err uses up an attempt: a channel in flight
// elsewhere does not.
func IsFailure(err error) bool { return !errors.Is(err, ErrInFlight) }

// NewServer returns the asynq server of the notifications queue.
func NewServer(r asynq.RedisConnOpt, cfg ServerConfig) *asynq.Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = 20 * time.Millisecond
	}
	if cfg.DelayedTaskCheckInterval <= 0 {
		cfg.DelayedTaskCheckInterval = time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return asynq.NewServer(r, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{Queue: 1},
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		RetryDelayFunc:           RetryDelay(cfg.RetryDelays),
		IsFailure:                IsFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
