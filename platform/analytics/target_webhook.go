package analytics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stampede-dev/stampede/platform/web"
)

// WebhookTarget POSTs each matched envelope, as JSON, to a URL. Network
// errors, timeouts, 408, 429 and 5xx are retried with exponential backoff up
// to Attempts in total; any other 4xx is a rejection. A target that answers
// 5xx or hangs never stops the router: an event still failing after its
// attempts, or not acknowledged when the batch's BatchTimeout ends, is
// rejected too, and the router dead-letters it with the reason (replay it
// with `stampede deadletter replay` once the receiver is back).
// Each request carries Idempotency-Key: the event id, so receivers can dedupe.
type WebhookTarget struct {
	URL          string
	Headers      map[string]string
	Client       *http.Client
	Attempts     int           // per event, in total; default DefaultWebhookAttempts
	Timeout      time.Duration // per attempt; default DefaultWebhookTimeout
	BatchTimeout time.Duration // one Deliver call; default DefaultWebhookBatchTimeout
	Backoff      time.Duration // first retry delay, doubled each time up to 5s; default 100ms
	Parallelism  int           // concurrent requests per batch; default 8
}

// Webhook defaults and bounds. A hanging receiver holds a batch for at most
// the batch timeout; one answering 5xx holds each event for its attempts
// (about Attempts x Timeout at worst).
const (
	DefaultWebhookAttempts     = 3
	DefaultWebhookTimeout      = 5 * time.Second
	DefaultWebhookBatchTimeout = 30 * time.Second
	MaxWebhookTimeout          = time.Minute
)

// Causes of a Rejection, the cause label of stampede_analytics_dead_letters_total.
const (
	CauseRejected  = "rejected"  // the target refused it for good (a 4xx, a record Kafka refuses)
	CauseExhausted = "exhausted" // still failing after the target's attempts
	CauseTimeout   = "timeout"   // not acknowledged within the target's batch timeout
)

var _ Target = (*WebhookTarget)(nil)

// Deliver implements Target.
func (t *WebhookTarget) Deliver(ctx context.Context, ds []Delivery) error {
	par := t.Parallelism
	if par <= 0 {
		par = 8
	}
	batch := t.BatchTimeout
	if batch <= 0 {
		batch = DefaultWebhookBatchTimeout
	}
	bctx, cancel := context.WithTimeout(ctx, batch)
	defer cancel()
	var (
		mu     sync.Mutex
		failed error
		rej    []Rejection
		wg     sync.WaitGroup
		sem    = make(chan struct{}, par)
	)
	reject := func(d Delivery, cause, reason string) {
		mu.Lock()
		rej = append(rej, Rejection{Delivery: d, Cause: cause, Reason: reason})
		mu.Unlock()
	}
	for _, d := range ds {
		select {
		case sem <- struct{}{}:
		case <-bctx.Done():
			if ctx.Err() != nil {
				mu.Lock()
				if failed == nil {
					failed = ctx.Err()
				}
				mu.Unlock()
				continue
			}
			reject(d, CauseTimeout, fmt.Sprintf("webhook %s: not sent: the batch's %s ran out", t.URL, batch))
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := t.send(bctx, d)
			var pe *permanentError
			var ee *exhaustedError
			switch {
			case err == nil:
			case ctx.Err() != nil:
				// The router is stopping: nothing is decided, the next
				// owner of the partition delivers it again.
				mu.Lock()
				if failed == nil {
					failed = ctx.Err()
				}
				mu.Unlock()
			case errors.As(err, &pe):
				reject(d, CauseRejected, pe.Error())
			case errors.As(err, &ee):
				reject(d, CauseExhausted, ee.Error())
			default: // the batch's time ran out during the attempts
				reject(d, CauseTimeout, fmt.Sprintf("webhook %s: not acknowledged within the batch's %s: %v", t.URL, batch, err))
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		return failed
	}
	if len(rej) > 0 {
		return &RejectedError{Rejected: rej}
	}
	return nil
}

type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// exhaustedError is an event still failing after every attempt.
type exhaustedError struct{ msg string }

func (e *exhaustedError) Error() string { return e.msg }

func (t *WebhookTarget) send(ctx context.Context, d Delivery) error {
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = DefaultWebhookAttempts
	}
	backoff := t.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	var last error
	for a := 1; a <= attempts; a++ {
		retryable, err := t.post(ctx, d)
		if err == nil {
			return nil
		}
		if !retryable {
			return &permanentError{msg: err.Error()}
		}
		last = err
		if ctx.Err() != nil {
			return fmt.Errorf("webhook %s: attempt %d: %w", t.URL, a, err)
		}
		if a == attempts {
			break
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("webhook %s: waiting to retry after %v: %w", t.URL, last, ctx.Err())
		case <-timer.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return &exhaustedError{msg: fmt.Sprintf("webhook %s: %d attempts: %v", t.URL, attempts, last)}
}

func (t *WebhookTarget) post(ctx context.Context, d Delivery) (retryable bool, err error) {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(d.Record.Value))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(web.HeaderIdempotencyKey, d.Env.ID)
	req.Header.Set("X-Stampede-Rule", d.Rule)
	req.Header.Set("X-Stampede-Event-Type", d.Env.Type)
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	cl := t.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook %s answered %d", t.URL, resp.StatusCode)
	default:
		return false, fmt.Errorf("webhook %s rejected event %s: %s", t.URL, d.Env.ID, strconv.Itoa(resp.StatusCode))
	}
}
