//go:build integration

package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/stacktest"
)

// TestIntegrationGroupClaimsEverySchemaInOneStep: rows waiting in two
// schemas' outboxes are claimed by one PGGroup claim, published in one Kafka
// transaction, and both marked sent by one commit; a second step finds
// nothing, and a row added to one schema afterwards goes alone.
func TestIntegrationGroupClaimsEverySchemaInOneStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	topic := "test-outbox-group-" + suffix
	admin, err := kgo.NewClient(kafka.BaseOpts("outbox-itest", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(ctx, admin, []kafka.TopicSpec{{Name: topic, Partitions: 1}}, 1); err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() { kadm.NewClient(admin).DeleteTopics(context.Background(), topic) })

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var (
		stores  []*outbox.PGStore
		sources []outbox.Source
	)
	add := func(schema, data string) {
		db := stacktest.DB(t, schema)
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		env := event.Envelope{ID: uuid.NewString(), Type: "itest.note", Version: 1, OccurredAt: time.Now().UTC(),
			CorrelationID: "cid-" + suffix, Source: "itest", Data: json.RawMessage(strconv.Quote(data))}
		if err := outbox.Add(ctx, tx, outbox.Message{Topic: topic, Key: "k-" + suffix, Envelope: env}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b"} {
		schema := "itest_group_" + name + "_" + suffix
		db := stacktest.DB(t, schema)
		t.Cleanup(func() { db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
		if err := outbox.EnsureTable(ctx, db); err != nil {
			t.Fatal(err)
		}
		st := outbox.NewPGStore(db, schema, log)
		t.Cleanup(st.Close)
		stores = append(stores, st)
		sources = append(sources, outbox.Source{Name: schema, Store: st})
	}
	add(sources[0].Name, "a1")
	add(sources[1].Name, "b1")
	add(sources[0].Name, "a2")

	prod, err := kgo.NewClient(append(kafka.BaseOpts("outbox-itest-group", config.KafkaBrokers()),
		kgo.TransactionalID("itest-group-"+suffix), kgo.ProducerLinger(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	relay := &outbox.Relay{Sources: sources, Claimer: outbox.NewPGGroup(stacktest.DB(t, sources[0].Name), stores...), Producer: prod, Log: log}
	consumer := stacktest.Consumer(t, topic)

	if n, err := relay.Step(ctx); err != nil || n != 3 {
		t.Fatalf("first step = %d, %v; want the 3 rows of both schemas", n, err)
	}
	if n, err := relay.Step(ctx); err != nil || n != 0 {
		t.Fatalf("second step = %d, %v; want nothing left", n, err)
	}
	add(sources[1].Name, "b2")
	if n, err := relay.Step(ctx); err != nil || n != 1 {
		t.Fatalf("third step = %d, %v; want the one new row", n, err)
	}
	got := stacktest.Collect(consumer, 15*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= 4 })
	var order []string
	for _, r := range got {
		env, err := event.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		json.Unmarshal(env.Data, &s)
		order = append(order, s)
	}
	if len(order) != 4 || order[3] != "b2" || strings.Index(strings.Join(order, ","), "a1") > strings.Index(strings.Join(order, ","), "a2") {
		t.Fatalf("published %v, want a1 before a2, b1, then b2 alone", order)
	}
}
