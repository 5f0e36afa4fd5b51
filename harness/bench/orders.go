package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

// AcceptOptions configure the Orders accept benchmark.
type AcceptOptions struct {
	OrdersURL string
	Brokers   []string
	Rate      int           // requests per second, open loop
	Duration  time.Duration // how long to send
	Progress  io.Writer     // one line per second; nil for none
}

// AcceptResult is what the benchmark measured.
type AcceptResult struct {
	Rate     int           `json:"rate"`
	Duration time.Duration `json:"duration"`
	Sent     int           `json:"sent"`
	Accepted int           `json:"accepted"`
	Failed   int           `json:"failed"`
	// Accept is the POST /v1/orders latency of accepted orders.
	Accept stats.Dist `json:"accept"`
	// The commit happens between the request and its response, so commit ->
	// visible lies between these two: from the response (a lower bound) and
	// from the request (an upper bound).
	VisibleAfterResponse stats.Dist `json:"visibleAfterResponse"`
	VisibleAfterRequest  stats.Dist `json:"visibleAfterRequest"`
	NotVisible           int        `json:"notVisible"` // accepted but never seen on the topic within the grace period
}

type sample struct {
	sent, acked, visible time.Time
}

// Accept drives POST /v1/orders at a constant rate and watches the orders
// topic with a read_committed consumer to time commit -> visible.
func Accept(ctx context.Context, o AcceptOptions) (AcceptResult, error) {
	res := AcceptResult{Rate: o.Rate, Duration: o.Duration}
	if o.Rate <= 0 || o.Duration <= 0 {
		return res, fmt.Errorf("bench: rate and duration must be positive")
	}
	cl, err := endConsumer(ctx, o.Brokers, event.TopicOrders)
	if err != nil {
		return res, err
	}
	defer cl.Close()

	var mu sync.Mutex
	samples := map[string]*sample{}
	visibleEarly := map[string]time.Time{} // seen before its response arrived
	cctx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if kafka.Header(r, event.HeaderEventType) != event.TypeOrderCreated {
					return
				}
				id := kafka.Header(r, event.HeaderCorrelationID)
				mu.Lock()
				if s, ok := samples[id]; ok {
					if s.visible.IsZero() {
						s.visible = now
					}
				} else if _, ok := visibleEarly[id]; !ok {
					visibleEarly[id] = now
				}
				mu.Unlock()
			})
		}
	}()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(o.Rate)
	start := time.Now()
	next := start
	var failed int
	lastReport := start
	for time.Since(start) < o.Duration && ctx.Err() == nil {
		next = next.Add(interval)
		time.Sleep(time.Until(next))
		res.Sent++
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			sent := time.Now()
			id, err := placeOrder(ctx, client, o.OrdersURL, n)
			acked := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			s := &sample{sent: sent, acked: acked}
			if v, ok := visibleEarly[id]; ok {
				s.visible = v
				delete(visibleEarly, id)
			}
			samples[id] = s
		}(res.Sent)
		if o.Progress != nil && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			mu.Lock()
			fmt.Fprintf(o.Progress, "\r%5.0fs  sent %d  accepted %d  failed %d   ", time.Since(start).Seconds(), res.Sent, len(samples), failed)
			mu.Unlock()
		}
	}
	wg.Wait()
	// Give the last orders time to become visible.
	grace := time.Now().Add(5 * time.Second)
	for time.Now().Before(grace) {
		mu.Lock()
		missing := 0
		for _, s := range samples {
			if s.visible.IsZero() {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopConsumer()
	<-consumerDone
	if o.Progress != nil {
		fmt.Fprintln(o.Progress)
	}

	mu.Lock()
	defer mu.Unlock()
	var accept, afterResp, afterReq []time.Duration
	for _, s := range samples {
		accept = append(accept, s.acked.Sub(s.sent))
		if s.visible.IsZero() {
			res.NotVisible++
			continue
		}
		afterResp = append(afterResp, s.visible.Sub(s.acked))
		afterReq = append(afterReq, s.visible.Sub(s.sent))
	}
	res.Accepted, res.Failed = len(samples), failed
	res.Accept = stats.Summarise(accept)
	res.VisibleAfterResponse = stats.Summarise(afterResp)
	res.VisibleAfterRequest = stats.Summarise(afterReq)
	return res, ctx.Err()
}

// placeOrder posts one realistic order and returns its id.
func placeOrder(ctx context.Context, c *http.Client, base string, n int) (string, error) {
	lines := 1 + rand.IntN(5)
	items := make([]map[string]any, lines)
	for i := range items {
		items[i] = map[string]any{"sku": fmt.Sprintf("SKU-%05d", 1+rand.IntN(1000)), "qty": 1 + rand.IntN(3), "priceCents": 100 + rand.IntN(20000)}
	}
	body, _ := json.Marshal(map[string]any{
		"userId": fmt.Sprintf("u-%d", 1+rand.IntN(10000)), "currency": "USD", "items": items,
		"shippingAddress": map[string]any{"name": "Bench", "line1": fmt.Sprintf("%d Load St", n), "city": "Springfield", "postalCode": "12345", "country": "US"},
		"payment":         map[string]any{"method": "card", "token": "tok_visa"},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/orders: %d %s", resp.StatusCode, b)
	}
	var r struct{ OrderID string }
	if err := json.Unmarshal(b, &r); err != nil {
		return "", err
	}
	return r.OrderID, nil
}

// endConsumer returns a read_committed consumer of topic from its current end.
func endConsumer(ctx context.Context, brokers []string, topic string) (*kgo.Client, error) {
	admin, err := kgo.NewClient(kafka.BaseOpts("stampede-bench-admin", brokers)...)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("bench: end offsets of %s: %w", topic, err)
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) { offsets[topic][o.Partition] = kgo.NewOffset().At(o.Offset) })
	return kgo.NewClient(append(kafka.BaseOpts("stampede-bench", brokers),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(50*time.Millisecond),
	)...)
}
