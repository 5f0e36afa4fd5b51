package idempotency

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/outbox"
)

// Schema is what every called service's store holds: its pool (whose
// search_path is the service's schema), the Scope its keys and orders lock
// in, and the outbox writer its events go through, in the transaction of
// the work. A service's Store embeds it and keeps only its domain logic.
type Schema struct {
	DB     *pgxpool.Pool
	Keys   Scope
	Events outbox.Writer
}

// NewSchema returns the schema on db: its requests lock in keys ("payments"
// locks "payments-key:K" and "payments-order:O"), its events go to topic
// from source.
func NewSchema(db *pgxpool.Pool, keys Scope, topic, source string) Schema {
	return Schema{DB: db, Keys: keys, Events: outbox.Writer{Topic: topic, Source: source}}
}

// Do runs one request under key in a transaction of its own (Scope.Do).
func (s Schema) Do(ctx context.Context, key, orderID string, body any, now time.Time, work func(tx pgx.Tx, in *Request) error) (Result, error) {
	return s.Keys.Do(ctx, s.DB, key, orderID, body, now, work)
}

// Locked runs work in a transaction of its own under the order's lock (Scope.Locked).
func (s Schema) Locked(ctx context.Context, orderID string, work func(tx pgx.Tx) error) error {
	return s.Keys.Locked(ctx, s.DB, orderID, work)
}

// Undo runs a compensation by order id, sent with key (Scope.Undo).
func (s Schema) Undo(ctx context.Context, orderID, key string, now time.Time, work func(tx pgx.Tx) error) error {
	return s.Keys.Undo(ctx, s.DB, orderID, key, now, work)
}

// OrderOf returns the order row id of table what+"s" belongs to (OrderOf).
func (s Schema) OrderOf(ctx context.Context, what, id string, notFound error) (string, error) {
	return OrderOf(ctx, s.DB, what, id, notFound)
}
