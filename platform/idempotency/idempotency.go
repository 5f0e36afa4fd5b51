// Package idempotency is how a called service (Inventory, Payments,
// Shipping) answers a request once per Idempotency-Key: inside the
// transaction that does the work it takes the key's and the order's locks,
// replays the first answer to a key byte for byte, refuses a key that comes
// back with another body, and records the answer in the same transaction as
// the state change, so an answer is never recorded for work that rolled back.
//
// It also keeps the service's closed orders: an order compensated by order
// id is closed, and a request for it that arrives later does nothing.
//
// Do and Undo run a request, or a compensation by order id, in a
// transaction of their own; Post is the HTTP side of a forward step.
//
// The tables live in the service's own schema (search_path); the package
// must never read another service's schema, and never commit or roll back
// a transaction it did not begin.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stampede-dev/stampede/platform/postgres"
)

// Error codes, in the "error" field of an answer, of the refusals this
// package makes for every service that answers through it.
const (
	CodeOrderClosed = "order_closed"           // 409: the order was compensated by order id; nothing was done
	CodeKeyReused   = "idempotency_key_reused" // 422: the key (or the order) came back with another request
)

// OutcomeReplayed is the outcome (a metric label) of an answer sent again:
// to a repeat of its key, or to another key for work the order already has.
const OutcomeReplayed = "replayed"

// Table is the DDL of the idempotency and closed-order tables, created in
// the current schema. A service created before the tables moved here has
// them from its own first migration, with this definition.
const Table = `
-- The first answer to each idempotency key, replayed byte for byte.
CREATE TABLE IF NOT EXISTS idempotency_keys (
	key          text PRIMARY KEY,
	order_id     text NOT NULL,
	request_hash bytea NOT NULL,
	status_code  int NOT NULL,
	response     json NOT NULL, -- json, not jsonb: replayed byte for byte
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- Orders compensated by order id: a request for them that arrives later does nothing.
CREATE TABLE IF NOT EXISTS closed_orders (
	order_id  text PRIMARY KEY,
	closed_at timestamptz NOT NULL
);
`

// Migration is Table as a migration of the service's schema, applied after
// the service's own first one; a database that has the tables already
// records it and changes nothing.
var Migration = postgres.Migration{Name: "002_idempotency.sql", SQL: Table}

// Execer is what EnsureTable and CloseOrder need: a transaction or a pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Queryer is what Closed needs: a transaction or a pool.
type Queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// EnsureTable creates the tables in db's current schema if they are missing.
func EnsureTable(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, Table); err != nil {
		return fmt.Errorf("idempotency: create tables: %w", err)
	}
	return nil
}

// Result is the answer to a request: the status code and JSON body to send,
// identical for every repeat of the same key.
type Result struct {
	Code     int
	Body     json.RawMessage
	Replayed bool
	Outcome  string
}

// Stamp returns what a store call about orderID records: now as PostgreSQL
// keeps it (UTC, microseconds), and correlationID, or the order id when it
// is "": every hop of an order uses its id when no other was given.
func Stamp(now time.Time, correlationID, orderID string) (time.Time, string) {
	if correlationID == "" {
		correlationID = orderID
	}
	return now.UTC().Truncate(time.Microsecond), correlationID
}

// Hash identifies v (a decoded request) by its JSON encoding: a repeat of a
// key must carry the same request.
func Hash(v any) []byte {
	b, _ := json.Marshal(v) // the services' request types always encode
	h := sha256.Sum256(b)
	return h[:]
}

// Scope is one service's use of the tables: the prefix of its lock names,
// kept as they were so instances of two versions still exclude each other,
// the service's own error for a reused key, and the keys the order saga
// sends it.
type Scope struct {
	Name   string // "inventory" locks "inventory-key:K" and "inventory-order:O"
	Reused error  // returned, as is, for a key that comes back with another body
	Saga   SagaKeys
}

// SagaKeys are the Idempotency-Keys the order saga sends a service, as
// suffixes of "{orderId}:": its forward step ("charge") and the
// compensation that undoes it ("refund").
//
// Changes made outside the saga. Work the saga did for an order (a charge,
// a shipment, a reservation made under its Step key) is undone only by the
// saga's compensation (a by-order undo under its Undo key) while the order
// is open. Any other undo (the per-resource endpoints, a by-order call
// without the saga's key) is refused with CodeSagaOwned, naming the order:
// a shipment cancelled or a charge refunded by hand while the saga waits
// for the delivery would otherwise end as "delivered" with the goods not
// sent, or sent and not paid. Refusing was chosen over the saga noticing
// the change (a signal from the service's event, then compensating) because
// it needs nothing of the saga and leaves no race: a refund noticed after
// the delivery signal, or a cancel after the shipment is delivered, has no
// right answer left. The way to undo an order is the Orders API's cancel,
// which the saga honours until the shipment exists; after that the order
// completes. An order already compensated here (closed) is answered as
// before: the undo changes nothing.
type SagaKeys struct {
	Step string // e.g. "charge": the saga's forward step sends {orderId}:charge
	Undo string // e.g. "refund": its compensation sends {orderId}:refund
}

// CodeSagaOwned is the "error" of a 409 refusing an undo of the saga's work
// from outside the saga.
const CodeSagaOwned = "saga_owned"

// ErrSagaOwned is what Guard's refusal is (errors.Is): the order's saga did
// this work, and the undo is not its compensation.
var ErrSagaOwned = errors.New("idempotency: the order's saga owns this work; only its compensation undoes it")

// SagaOwnedError is Guard's refusal of an undo of OrderID's work.
type SagaOwnedError struct{ OrderID string }

func (e *SagaOwnedError) Error() string        { return ErrSagaOwned.Error() + ": order " + e.OrderID }
func (e *SagaOwnedError) Is(target error) bool { return target == ErrSagaOwned }

// Guard decides, in tx under the order's lock, whether an undo of the
// order's work here may go ahead: yes when key is the saga's compensation
// key (Saga.Undo), when the order is closed (compensated already: the undo
// changes nothing) or when the saga did not do the work (no answer to its
// Step key); ErrSagaOwned otherwise. key is the request's Idempotency-Key,
// "" for none.
func (s Scope) Guard(ctx context.Context, tx Queryer, orderID, key string) error {
	if s.Saga.Step == "" || (s.Saga.Undo != "" && key == orderID+":"+s.Saga.Undo) {
		return nil
	}
	var owned, closed bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE key = $1),
		EXISTS (SELECT 1 FROM closed_orders WHERE order_id = $2)`, orderID+":"+s.Saga.Step, orderID).Scan(&owned, &closed)
	if err != nil {
		return fmt.Errorf("check the saga's work: %w", err)
	}
	if owned && !closed {
		return &SagaOwnedError{OrderID: orderID}
	}
	return nil
}

// Request is one request under its key, in the caller's transaction.
type Request struct {
	tx      pgx.Tx
	key     string
	orderID string
	hash    []byte
	now     time.Time

	// Result is the answer: the first one when Begin found the key, else
	// what Record stored.
	Result Result
}

// Begin takes, in tx, the key's lock and then the order's (always in that
// order, so two requests never wait on each other in a cycle), then looks
// key up. A key answered before for the same body comes back Replayed with
// its first answer, to send as it is; for another body Begin returns
// s.Reused. Otherwise the caller does the work and ends with Record.
func (s Scope) Begin(ctx context.Context, tx pgx.Tx, key, orderID string, body any, now time.Time) (*Request, error) {
	r := &Request{tx: tx, key: key, orderID: orderID, hash: Hash(body), now: now}
	if err := lock(ctx, tx, s.Name+"-key:"+key); err != nil {
		return nil, err
	}
	if err := s.LockOrder(ctx, tx, orderID); err != nil {
		return nil, err
	}
	var firstHash []byte
	err := tx.QueryRow(ctx, "SELECT request_hash, status_code, response FROM idempotency_keys WHERE key = $1", key).
		Scan(&firstHash, &r.Result.Code, &r.Result.Body)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		r.Result = Result{}
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if err := s.replay(firstHash, r); err != nil {
		return nil, err
	}
	return r, nil
}

// replay decides on a key found with firstHash: the same body is a replay
// of the first answer, another body is s.Reused.
func (s Scope) replay(firstHash []byte, r *Request) error {
	if string(firstHash) != string(r.hash) {
		return s.Reused
	}
	r.Result.Replayed, r.Result.Outcome = true, OutcomeReplayed
	return nil
}

// Beginner starts a transaction: a *pgxpool.Pool.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Do runs one request under key in a transaction of its own: Begin, then,
// unless the key was answered before, work, which ends with Record (or
// RecordReplay, or RefuseClosed). The transaction commits when work
// returns nil. Do returns the answer to send: the first one for a repeat.
func (s Scope) Do(ctx context.Context, db Beginner, key, orderID string, body any, now time.Time, work func(tx pgx.Tx, in *Request) error) (Result, error) {
	var in *Request
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) (err error) {
		if in, err = s.Begin(ctx, tx, key, orderID, body, now); err != nil || in.Result.Replayed {
			return err
		}
		return work(tx, in)
	})
	if err != nil {
		return Result{}, err
	}
	return in.Result, nil
}

// Locked runs work in a transaction of its own under the order's lock, so
// it waits for a request of the order in flight.
func (s Scope) Locked(ctx context.Context, db Beginner, orderID string, work func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := s.LockOrder(ctx, tx, orderID); err != nil {
			return err
		}
		return work(tx)
	})
}

// Undo runs a compensation by order id, sent with key (the request's
// Idempotency-Key, "" for none): under the order's lock (Locked) it checks
// that the undo may go ahead (Guard), closes the order, so a request for it
// that arrives later does nothing, then runs work, which undoes whatever
// the order holds.
func (s Scope) Undo(ctx context.Context, db Beginner, orderID, key string, now time.Time, work func(tx pgx.Tx) error) error {
	return s.Locked(ctx, db, orderID, func(tx pgx.Tx) error {
		if err := s.Guard(ctx, tx, orderID, key); err != nil {
			return err
		}
		if err := CloseOrder(ctx, tx, orderID, now); err != nil {
			return err
		}
		return work(tx)
	})
}

// OrderOf returns the order a resource belongs to, whose lock guards it:
// the order_id of row id (a UUID) of table what+"s" ("charge": charges).
// It returns notFound when id is not a UUID or there is no such row.
func OrderOf(ctx context.Context, db Queryer, what, id string, notFound error) (string, error) {
	if uuid.Validate(id) != nil {
		return "", notFound
	}
	var orderID string
	err := db.QueryRow(ctx, "SELECT order_id FROM "+what+"s WHERE id = $1", id).Scan(&orderID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", notFound
	case err != nil:
		return "", fmt.Errorf("find %s %s: %w", what, id, err)
	}
	return orderID, nil
}

// LockOrder takes the order's lock in tx, as Begin does; a compensation by
// order id takes it to wait for a request of the order in flight.
func (s Scope) LockOrder(ctx context.Context, tx pgx.Tx, orderID string) error {
	return lock(ctx, tx, s.Name+"-order:"+orderID)
}

// lock takes a transaction-scoped advisory lock; concurrent holders of the
// same name wait, so a duplicate request replays the first one's answer.
func lock(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return nil
}

// Record stores code and body (encoded as JSON) as the answer to the key,
// with outcome as the metric label, and makes it the Result.
func (r *Request) Record(ctx context.Context, code int, body any, outcome string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	r.Result.Code, r.Result.Body, r.Result.Outcome = code, b, outcome
	if _, err := r.tx.Exec(ctx, `INSERT INTO idempotency_keys (key, order_id, request_hash, status_code, response, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.key, r.orderID, r.hash, code, b, r.now); err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	}
	return nil
}

// RecordReplay records, under this request's key, the answer the order
// already has (another key did the work): the result is Replayed.
func (r *Request) RecordReplay(ctx context.Context, code int, body any) error {
	r.Result.Replayed = true
	return r.Record(ctx, code, body, OutcomeReplayed)
}

// RefuseClosed answers the request when its order is closed: it records
// 409 {"error": code, "orderId": ...}, with code as the outcome too, and
// reports true; for an open order it records nothing.
func (r *Request) RefuseClosed(ctx context.Context, code string) (bool, error) {
	closed, err := Closed(ctx, r.tx, r.orderID)
	if err != nil || !closed {
		return false, err
	}
	return true, r.Record(ctx, http.StatusConflict, map[string]string{"error": code, "orderId": r.orderID}, code)
}

// Closed reports whether orderID is closed.
func Closed(ctx context.Context, db Queryer, orderID string) (bool, error) {
	var closed bool
	if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM closed_orders WHERE order_id = $1)", orderID).Scan(&closed); err != nil {
		return false, fmt.Errorf("check closed order: %w", err)
	}
	return closed, nil
}

// CloseOrder closes orderID at now; closing a closed order changes nothing.
func CloseOrder(ctx context.Context, db Execer, orderID string, now time.Time) error {
	if _, err := db.Exec(ctx, "INSERT INTO closed_orders (order_id, closed_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", orderID, now); err != nil {
		return fmt.Errorf("close order: %w", err)
	}
	return nil
}
