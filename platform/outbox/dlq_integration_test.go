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

// TestIntegrationOversizedRowIsDeadLettered is issue 14's incident on the
// real broker and PostgreSQL: a 1.2 MB row between two normal ones. The
// relay dead-letters it after outbox.MaxAttempts refusals, publishes both
// normal rows, lists the dead one, and a replay gives it back to the relay.
func TestIntegrationOversizedRowIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	schema, topic := "itest_outbox_"+suffix, "test-outbox-dlq-"+suffix
	db := stacktest.DB(t, schema)
	t.Cleanup(func() { db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	if err := outbox.EnsureTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	admin, err := kgo.NewClient(kafka.BaseOpts("outbox-itest", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(ctx, admin, []kafka.TopicSpec{{Name: topic, Partitions: 1}}, 1); err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() { kadm.NewClient(admin).DeleteTopics(context.Background(), topic) })

	msg := func(data string) outbox.Message {
		env := event.Envelope{ID: uuid.NewString(), Type: "itest.note", Version: 1, OccurredAt: time.Now().UTC(),
			CorrelationID: "cid-" + suffix, Source: "itest", Data: json.RawMessage(strconv.Quote(data))}
		return outbox.Message{Topic: topic, Key: "u-" + suffix, Envelope: env}
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Add(ctx, tx, msg("before"), msg(strings.Repeat("x", 1200<<10)), msg("after")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	consumer := stacktest.Consumer(t, topic)
	prod, err := kgo.NewClient(append(kafka.BaseOpts("outbox-itest-relay", config.KafkaBrokers()),
		kgo.TransactionalID("itest-relay-"+suffix), kgo.ProducerLinger(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	store := outbox.NewPGStore(db, schema, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer store.Close()
	relay := &outbox.Relay{Sources: []outbox.Source{{Name: schema, Store: store}}, Producer: prod, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	var dead []outbox.DeadRow
	for step := 0; step < 2*outbox.MaxAttempts && len(dead) == 0; step++ {
		relay.Step(ctx)
		if dead, err = outbox.ListDead(ctx, db, schema, 10); err != nil {
			t.Fatal(err)
		}
	}
	if len(dead) != 1 || dead[0].Bytes < 1200<<10 || !strings.Contains(dead[0].Reason, "MESSAGE_TOO_LARGE") {
		t.Fatalf("dead rows = %+v, want the 1.2 MB row with Kafka's reason", dead)
	}
	got := stacktest.Collect(consumer, 15*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= 2 })
	if len(got) != 2 || !strings.Contains(string(got[0].Value), "before") || !strings.Contains(string(got[1].Value), "after") {
		t.Fatalf("published %d records, want the row before and the row after the oversized one", len(got))
	}
	var unsent int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL").Scan(&unsent); err != nil || unsent != 0 {
		t.Fatalf("rows still waiting for the relay: %d, %v", unsent, err)
	}

	n, err := outbox.ReplayDead(ctx, db, schema, []int64{dead[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("ReplayDead = %d, %v; want 1", n, err)
	}
	if left, _ := outbox.ListDead(ctx, db, schema, 10); len(left) != 0 {
		t.Fatalf("after the replay, dead rows = %+v", left)
	}
	for step := 0; step < outbox.MaxAttempts; step++ {
		relay.Step(ctx)
	}
	if dead, _ = outbox.ListDead(ctx, db, schema, 10); len(dead) != 1 {
		t.Fatalf("the replayed row, still too large, was not tried and dead-lettered again: %+v", dead)
	}
}
