// Package kafka builds the franz-go clients Stampede's processes share:
// common options, the topic set, record headers, and the metrics every
// producer and consumer records (including consumer lag measured in time).
//
// It must never interpret a record's value: decoding belongs to package event.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
)

// TopicSpec is a topic the stack creates.
type TopicSpec struct {
	Name       string
	Partitions int32
}

// Topics is every topic the platform uses, with its partition count.
var Topics = []TopicSpec{
	{event.TopicOrders, 12},
	{event.TopicPayments, 6},
	{event.TopicInventory, 6},
	{event.TopicShipping, 6},
	{event.TopicNotifications, 6},
	{event.TopicAnalytics, 6},
	{event.TopicOrdersDLQ, 1},
	{event.TopicAnalyticsDLQ, 1},
	{"analytics.high-value", 6}, // the default analytics rules route high-value orders here
}

// BaseOpts returns the options every Stampede client starts from.
func BaseOpts(clientID string, brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		// Loopback brokers answer in microseconds; fail fast and retry instead of
		// waiting out the default 10 s dial timeout during a broker restart.
		kgo.DialTimeout(3 * time.Second),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			d := time.Duration(tries) * 100 * time.Millisecond
			if d > time.Second {
				d = time.Second
			}
			return d
		}),
	}
}

// EnsureTopics creates every topic in specs that does not exist yet. Topics
// that exist are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, specs []TopicSpec, replication int16) error {
	adm := kadm.NewClient(cl)
	for _, s := range specs {
		resp, err := adm.CreateTopic(ctx, s.Partitions, replication, nil, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", s.Name, err)
		}
	}
	return nil
}

// Ping asks the cluster for its metadata: the readiness check of a broker.
func Ping(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(BaseOpts("stampede-ping", brokers)...)
	if err != nil {
		return fmt.Errorf("kafka: ping: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("kafka: metadata from %v: %w", brokers, err)
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("kafka: metadata from %v lists no broker", brokers)
	}
	return nil
}

// Header returns the value of the first header named key, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// EventHeaders returns the standard headers of a record carrying env.
func EventHeaders(env event.Envelope) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: event.HeaderCorrelationID, Value: []byte(env.CorrelationID)},
		{Key: event.HeaderSource, Value: []byte(env.Source)},
		{Key: event.HeaderEventType, Value: []byte(env.Type)},
		{Key: event.HeaderEventVersion, Value: []byte(fmt.Sprint(env.Version))},
	}
}
