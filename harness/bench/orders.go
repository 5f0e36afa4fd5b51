package bench

import (
	"context"
	"fmt"
	"io"
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

	api := &ordersAPI{base: o.OrdersURL, c: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		maxLines: 5, street: "Load St"}
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
			id, err := api.place(ctx, "", n)
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
