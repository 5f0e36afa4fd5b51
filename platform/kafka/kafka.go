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
	// Configs are topic configs set at creation and kept set on every start.
	Configs map[string]string
}

// appendTime stamps records with the broker's append time instead of the
// producer's clock. Consumer lag in time (now - timestamp of the first
// record a group has not committed) then measures how long a record has
// been in the log, not how long its producer took to send it: a busy
// producer is not a slow consumer.
var appendTime = map[string]string{"message.timestamp.type": "LogAppendTime"}

// Topics is every topic the platform uses, with its partition count.
var Topics = []TopicSpec{
	{event.TopicOrders, 12, appendTime},
	{event.TopicOrderStatus, 12, appendTime},
	{event.TopicPayments, 6, nil},
	{event.TopicInventory, 6, nil},
	{event.TopicShipping, 6, appendTime},
	{event.TopicNotifications, 6, nil},
	{event.TopicAnalytics, 6, nil},
	{event.TopicOrdersDLQ, 1, nil},
	{event.TopicAnalyticsDLQ, 1, nil},
	{"analytics.high-value", 6, nil}, // the default analytics rules route high-value orders here
}

// BaseOpts returns the options every Stampede client starts from, TLS and
// SASL from the environment (SecurityFromEnv) included.
func BaseOpts(clientID string, brokers []string) []kgo.Opt {
	return append([]kgo.Opt{
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
	}, securityOpts()...)
}

// EnsureTopics creates every topic in specs that does not exist yet, and
// sets each spec's configs on topics that already exist. Partition counts
// of existing topics are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, specs []TopicSpec, replication int16) error {
	adm := kadm.NewClient(cl)
	for _, s := range specs {
		var configs map[string]*string
		for k, v := range s.Configs {
			if configs == nil {
				configs = map[string]*string{}
			}
			configs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, replication, configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) && len(s.Configs) > 0 {
			var alter []kadm.AlterConfig
			for k, v := range s.Configs {
				alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
			}
			ar, aerr := adm.AlterTopicConfigs(ctx, alter, s.Name)
			if aerr == nil {
				for _, r := range ar {
					if r.Err != nil {
						aerr = r.Err
					}
				}
			}
			if aerr != nil {
				return fmt.Errorf("kafka: set configs of topic %s: %w", s.Name, aerr)
			}
			err = nil
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
