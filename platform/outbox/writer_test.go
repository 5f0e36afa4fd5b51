package outbox

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stampede-dev/stampede/platform/event"
)

// execTx records the statements Add executes; any other method of pgx.Tx panics.
type execTx struct {
	pgx.Tx
	sql  []string
	args [][]any
}

func (t *execTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t.sql, t.args = append(t.sql, sql), append(t.args, args)
	return pgconn.CommandTag{}, nil
}

func TestWriterAdd(t *testing.T) {
	tx := &execTx{}
	w := Writer{Topic: event.TopicShipping, Source: "shipping-service"}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	p := event.ShipmentDelivered{OrderID: "o-1", ShipmentID: "s-1"}
	if err := w.Add(context.Background(), tx, "o-1", p, "c-1", at); err != nil {
		t.Fatal(err)
	}
	if len(tx.sql) != 2 || !strings.Contains(tx.sql[0], "INSERT INTO outbox") || !strings.Contains(tx.sql[1], "pg_notify") {
		t.Fatalf("got statements %q, want the insert, then the notify", tx.sql)
	}
	topic, key, value := tx.args[0][1], tx.args[0][2], tx.args[0][3].([]byte)
	if topic != event.TopicShipping || key != "o-1" {
		t.Errorf("got topic %v key %v, want %s o-1", topic, key, event.TopicShipping)
	}
	var env event.Envelope
	if err := json.Unmarshal(value, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != p.EventType() || env.Source != "shipping-service" || env.CorrelationID != "c-1" || !env.OccurredAt.Equal(at) {
		t.Errorf("got envelope %+v, want a %s from shipping-service, correlation c-1, at %v", env, p.EventType(), at)
	}
}

// An invalid event is refused before anything is written.
func TestWriterAddRefusesInvalid(t *testing.T) {
	tx := &execTx{}
	err := Writer{Topic: event.TopicShipping, Source: "s"}.Add(context.Background(), tx, "o-1", event.ShipmentDelivered{}, "c", time.Now())
	if err == nil || len(tx.sql) != 0 {
		t.Fatalf("got %v after %d statements, want an error and none", err, len(tx.sql))
	}
}
