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
// errors, 408, 429 and 5xx are retried with exponential backoff up to
// Attempts in total; any other 4xx is a rejection (dead-lettered, not retried).
// Each request carries Idempotency-Key: the event id, so receivers can dedupe.
type WebhookTarget struct {
	URL         string
	Headers     map[string]string
	Client      *http.Client
	Attempts    int           // in total; default 5
	Timeout     time.Duration // per attempt; default 5s
	Backoff     time.Duration // first retry delay, doubled each time up to 5s; default 100ms
	Parallelism int           // concurrent requests per batch; default 8
}

var _ Target = (*WebhookTarget)(nil)

// Deliver implements Target.
func (t *WebhookTarget) Deliver(ctx context.Context, ds []Delivery) error {
	par := t.Parallelism
	if par <= 0 {
		par = 8
	}
	var (
		mu     sync.Mutex
		failed error
		rej    []Rejection
		wg     sync.WaitGroup
		sem    = make(chan struct{}, par)
	)
	for _, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := t.send(ctx, d)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			var pe *permanentError
			if errors.As(err, &pe) {
				rej = append(rej, Rejection{Delivery: d, Reason: pe.Error()})
			} else if failed == nil {
				failed = err
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

func (t *WebhookTarget) send(ctx context.Context, d Delivery) error {
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = 5
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
		if a == attempts {
			break
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return fmt.Errorf("webhook %s: %d attempts: %w", t.URL, attempts, last)
}

func (t *WebhookTarget) post(ctx context.Context, d Delivery) (retryable bool, err error) {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
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
