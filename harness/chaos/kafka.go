package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
)

// Recorder keeps order.created records seen on the orders topic during the
// run, so the duplicate fault can produce real ones again.
type Recorder struct {
	mu      sync.Mutex
	records []*kgo.Record
	max     int
}

// Record consumes topic from its end until ctx is done, keeping up to max
// order.created records.
func (r *Recorder) Record(ctx context.Context, brokers []string, topic string, max int) error {
	r.max = max
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return fmt.Errorf("record %s: %w", topic, err)
	}
	go func() {
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(rec *kgo.Record) {
				if header(rec, event.HeaderEventType) != event.TypeOrderCreated {
					return
				}
				r.mu.Lock()
				if len(r.records) < r.max {
					r.records = append(r.records, rec)
				}
				r.mu.Unlock()
			})
		}
	}()
	return nil
}

// Recorded returns the records kept so far.
func (r *Recorder) Recorded() []*kgo.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*kgo.Record(nil), r.records...)
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// orderOf returns the order id inside an order.created envelope.
func orderOf(r *kgo.Record) string {
	var env event.Envelope
	if json.Unmarshal(r.Value, &env) != nil {
		return ""
	}
	var data struct {
		OrderID string `json:"orderId"`
	}
	json.Unmarshal(env.Data, &data)
	return data.OrderID
}

// produce sends records with a plain idempotent producer, outside any
// transaction: exactly what a misbehaving publisher would do.
func produce(ctx context.Context, brokers []string, recs []*kgo.Record) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return cl.ProduceSync(pctx, recs...).FirstErr()
}

// Duplicate produces copies of recorded order.created records (same key,
// value and headers, new timestamp) and returns the orders they name.
func Duplicate(ctx context.Context, brokers []string, recorded []*kgo.Record, n int) ([]string, error) {
	if len(recorded) == 0 {
		return nil, fmt.Errorf("no order.created record was seen on the orders topic to duplicate")
	}
	if len(recorded) > n {
		recorded = recorded[:n]
	}
	var recs []*kgo.Record
	var orders []string
	for _, r := range recorded {
		recs = append(recs, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers})
		orders = append(orders, orderOf(r))
	}
	if err := produce(ctx, brokers, recs); err != nil {
		return nil, fmt.Errorf("produce duplicates: %w", err)
	}
	return orders, nil
}

// Poison produces one undecodable record, labelled order.created, into
// topic, and returns its key (to find it in the dead-letter topic).
func Poison(ctx context.Context, brokers []string, topic, run string) (string, error) {
	key := "chaos-poison-" + run
	rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(`{"id": "poison", "type": "order.created", "data": {not json`),
		Headers: []kgo.RecordHeader{{Key: event.HeaderEventType, Value: []byte(event.TypeOrderCreated)}, {Key: event.HeaderSource, Value: []byte("chaos")}}}
	if err := produce(ctx, brokers, []*kgo.Record{rec}); err != nil {
		return "", fmt.Errorf("produce poison: %w", err)
	}
	return key, nil
}

// EndOffsets returns the end offsets of topic (where to look from for later records).
func EndOffsets(ctx context.Context, brokers []string, topic string) (map[int32]kgo.Offset, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = kgo.NewOffset().At(o.Offset) })
	return out, nil
}

// FindKey reads topic from the given offsets for up to wait, looking for a
// record with key.
func FindKey(ctx context.Context, brokers []string, topic string, from map[int32]kgo.Offset, key string, wait time.Duration) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for fctx.Err() == nil {
		fs := cl.PollFetches(fctx)
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == key {
				found = true
			}
		})
		if found {
			return true, nil
		}
	}
	return false, nil
}
