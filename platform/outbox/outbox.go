// Package outbox is the transactional outbox: a service writes its events into
// an outbox table in the same PostgreSQL transaction as its state change, and
// the relay publishes committed rows to Kafka in one Kafka transaction per
// batch (idempotent, transactional producer), then marks them sent.
//
// A relay that crashes between the Kafka commit and the mark publishes the
// rows again: the duplicate carries the same event id, and consumers dedupe
// on it. The package must never lose a committed row and never publish a row
// whose database transaction rolled back.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stampede-dev/stampede/platform/event"
)

// NotifyChannel is the LISTEN/NOTIFY channel that wakes relays; the payload is the schema.
const NotifyChannel = "stampede_outbox"

// Message is one event to publish to Topic with Key.
type Message struct {
	Topic    string
	Key      string
	Envelope event.Envelope
}

// Execer is what Add and EnsureTable need: a transaction or a pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Table is the DDL of the outbox table, created in the current schema.
//
// CREATE ... IF NOT EXISTS is not safe against itself: two sessions creating
// the same table at once fail one with a duplicate key in pg_type/pg_class.
// The relay ensures every schema's outbox while that schema's service does
// the same, which happens when they start together (compose, stampedetest),
// so the statements run under a lock on the schema's outbox, held until the
// implicit transaction of this one multi-statement string ends.
const Table = `
SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.outbox'));
CREATE TABLE IF NOT EXISTS outbox (
	id         bigserial PRIMARY KEY,
	event_id   uuid NOT NULL UNIQUE,
	topic      text NOT NULL,
	key        text NOT NULL,
	value      bytea NOT NULL,
	headers    jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS dead_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS dead_reason text;
`

// EnsureTable creates the outbox table in db's current schema if it is missing.
func EnsureTable(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, Table); err != nil {
		return fmt.Errorf("outbox: create table: %w", err)
	}
	return nil
}

// Add writes msgs to the outbox of tx's schema and notifies the relays, which
// see the rows only once tx commits.
func Add(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	for _, m := range msgs {
		value, err := json.Marshal(m.Envelope)
		if err != nil {
			return fmt.Errorf("outbox: encode %s: %w", m.Envelope.Type, err)
		}
		headers, err := json.Marshal(map[string]string{
			event.HeaderCorrelationID: m.Envelope.CorrelationID,
			event.HeaderSource:        m.Envelope.Source,
			event.HeaderEventType:     m.Envelope.Type,
			event.HeaderEventVersion:  fmt.Sprint(m.Envelope.Version),
		})
		if err != nil {
			return fmt.Errorf("outbox: encode headers: %w", err)
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO outbox (event_id, topic, key, value, headers) VALUES ($1, $2, $3, $4, $5)`,
			m.Envelope.ID, m.Topic, m.Key, value, headers); err != nil {
			return fmt.Errorf("outbox: insert %s: %w", m.Envelope.Type, err)
		}
	}
	if len(msgs) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, current_schema())`, NotifyChannel); err != nil {
			return fmt.Errorf("outbox: notify: %w", err)
		}
	}
	return nil
}

// Writer writes the events of one service to the outbox: each to Topic,
// its envelope naming Source.
type Writer struct{ Topic, Source string }

// Add writes the event p to the outbox of tx's schema under key (the order
// id), with the correlation id and time of the work that made it.
func (w Writer) Add(ctx context.Context, tx pgx.Tx, key string, p event.Payload, correlationID string, at time.Time) error {
	env, err := event.New(p, w.Source, correlationID, at)
	if err != nil {
		return err
	}
	return Add(ctx, tx, Message{Topic: w.Topic, Key: key, Envelope: env})
}
