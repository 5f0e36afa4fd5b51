package order

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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/vault"
	"github.com/stampede-dev/stampede/platform/web"
)

// Sentinel errors of the Orders service.
var (
	ErrNotFound           = errors.New("order: not found")
	ErrKeyInFlight        = errors.New("order: a request with this idempotency key is in flight")
	ErrKeyReusedOtherBody = errors.New("order: idempotency key reused with a different body")
)

// Store is the orders schema.
type Store struct {
	db *pgxpool.Pool
	// Direct, when set, takes the order's events instead of the outbox:
	// Create commits the order without them and hands them to Direct after
	// the commit, whatever it answers. Only the chaos selftest's
	// FailPublishOutsideOutbox and the REST-chain baseline (no events at
	// all) set it; nil is the outbox, the platform.
	Direct func(ctx context.Context, msgs []outbox.Message)
}

// NewStore returns the store on db, whose search_path is the orders schema.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// requestHash identifies a request body for idempotency: the canonical JSON
// of the decoded request, so formatting and key order do not matter.
func requestHash(req CreateRequest) []byte {
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

// Create commits the order, its first history entry, its idempotency record,
// its payment token (in the vault) and its outbox rows (order.created, with
// the token's reference, to orders; the analytics event to analytics) in one
// transaction. With a key it replays the first response
// for the same body (replayed true), refuses another body, and refuses a
// duplicate while the first is still in flight.
func (s *Store) Create(ctx context.Context, req CreateRequest, key, correlationID string, now time.Time) (resp CreateResponse, replayed bool, err error) {
	now = now.UTC()
	hash := requestHash(req)
	var msgs []outbox.Message
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if key != "" {
			var locked bool
			if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", "idem:"+key).Scan(&locked); err != nil {
				return fmt.Errorf("lock idempotency key: %w", err)
			}
			if !locked {
				return ErrKeyInFlight
			}
			var firstHash []byte
			var first []byte
			err := tx.QueryRow(ctx, "SELECT request_hash, response FROM idempotency_keys WHERE key = $1", key).Scan(&firstHash, &first)
			switch {
			case err == nil:
				if string(firstHash) != string(hash) {
					return ErrKeyReusedOtherBody
				}
				replayed = true
				return json.Unmarshal(first, &resp)
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("read idempotency key: %w", err)
			}
		}

		id := uuid.NewString()
		if correlationID == "" {
			correlationID = id
		}
		resp = CreateResponse{OrderID: id, Status: StatusPending, TotalCents: req.Total()}
		items, _ := json.Marshal(req.Items)
		addr, _ := json.Marshal(req.ShippingAddress)
		var keyArg any
		if key != "" {
			keyArg = key
		}
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id, user_id, currency, total_cents, items, shipping_address,
			payment_method, status, correlation_id, idempotency_key, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
			id, req.UserID, req.Currency, resp.TotalCents, items, addr, req.Payment.Method, StatusPending, correlationID, keyArg, now); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO order_history (order_id, seq, status, at) VALUES ($1, 0, $2, $3)`, id, StatusPending, now); err != nil {
			return fmt.Errorf("insert history: %w", err)
		}
		if key != "" {
			body, _ := json.Marshal(resp)
			if _, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, order_id, response) VALUES ($1, $2, $3, $4)`,
				key, hash, id, body); err != nil {
				return fmt.Errorf("insert idempotency key: %w", err)
			}
		}
		// The token stays in the vault; the event, and so Kafka, the saga's
		// history and every consumer, carries its reference only.
		ref, err := vault.Put(ctx, tx, req.Payment.Token)
		if err != nil {
			return err
		}
		created, err := event.New(event.OrderCreated{
			OrderID: id, UserID: req.UserID, Currency: req.Currency, Items: req.Items, TotalCents: resp.TotalCents,
			ShippingAddress: req.ShippingAddress, Payment: event.Payment{Method: req.Payment.Method, Ref: ref}, CreatedAt: now,
		}, Source, correlationID, now)
		if err != nil {
			return err
		}
		analytics, err := event.New(event.AnalyticsOrder{
			OrderID: id, UserID: req.UserID, TotalCents: resp.TotalCents, Currency: req.Currency,
			ItemCount: len(req.Items), Country: req.ShippingAddress.Country,
		}, Source, correlationID, now)
		if err != nil {
			return err
		}
		msgs = []outbox.Message{
			{Topic: event.TopicOrders, Key: req.UserID, Envelope: created},
			{Topic: event.TopicAnalytics, Key: id, Envelope: analytics},
		}
		if s.Direct != nil {
			return nil
		}
		return outbox.Add(ctx, tx, msgs...)
	})
	if err == nil && !replayed && s.Direct != nil {
		s.Direct(ctx, msgs)
	}
	return resp, replayed, err
}

// SetStatus records a status the Orders service decided itself (the
// REST-chain baseline, which has no saga): the order's status, its reason
// and a history entry after the last one.
func (s *Store) SetStatus(ctx context.Context, id, status, reason string, now time.Time) error {
	now = now.UTC()
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO order_history (order_id, seq, status, at, reason)
			SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4 FROM order_history WHERE order_id = $1`, id, status, now, reason); err != nil {
			return fmt.Errorf("insert history of %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE orders SET status = $2, status_seq = status_seq + 1, updated_at = $3,
			failure_reason = CASE WHEN $4 <> '' THEN $4 ELSE failure_reason END WHERE id = $1`, id, status, now, reason); err != nil {
			return fmt.Errorf("set status of %s: %w", id, err)
		}
		return nil
	})
}

// Get returns the order with its history.
func (s *Store) Get(ctx context.Context, id string) (Order, error) {
	var o Order
	if uuid.Validate(id) != nil {
		return o, ErrNotFound
	}
	// The order and its history from one snapshot: read apart, a GET
	// between the projection's commit and the second read showed the new
	// history with the old status (failed in the history, compensating
	// as the status).
	tx, err := s.db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return o, fmt.Errorf("get order %s: %w", id, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var items, addr []byte
	err = tx.QueryRow(ctx, `SELECT id::text, user_id, currency, total_cents, items, shipping_address, payment_method,
		status, failure_reason, correlation_id, created_at, updated_at FROM orders WHERE id = $1`, id).Scan(
		&o.OrderID, &o.UserID, &o.Currency, &o.TotalCents, &items, &addr, &o.PaymentMethod,
		&o.Status, &o.FailureReason, &o.CorrelationID, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("get order %s: %w", id, err)
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return o, fmt.Errorf("decode items of %s: %w", id, err)
	}
	if err := json.Unmarshal(addr, &o.ShippingAddress); err != nil {
		return o, fmt.Errorf("decode address of %s: %w", id, err)
	}
	rows, err := tx.Query(ctx, `SELECT status, at, reason FROM order_history WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return o, fmt.Errorf("get history of %s: %w", id, err)
	}
	o.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
		var h HistoryEntry
		err := r.Scan(&h.Status, &h.At, &h.Reason)
		return h, err
	})
	if err != nil {
		return o, fmt.Errorf("read history of %s: %w", id, err)
	}
	return o, nil
}

// List returns up to limit orders created at or after since, oldest first,
// continuing after cursor (the last order id of the previous page); only
// userID's when userID is not empty.
func (s *Store) List(ctx context.Context, since time.Time, cursor, userID string, limit int) (List, error) {
	var afterAt time.Time
	afterID := "00000000-0000-0000-0000-000000000000"
	if cursor != "" {
		if uuid.Validate(cursor) != nil {
			return List{}, web.Errorf(http.StatusBadRequest, "cursor", "not a cursor from a previous page")
		}
		if err := s.db.QueryRow(ctx, "SELECT created_at FROM orders WHERE id = $1", cursor).Scan(&afterAt); err != nil {
			return List{}, web.Errorf(http.StatusBadRequest, "cursor", "not a cursor from a previous page")
		}
		afterID = cursor
	}
	if afterAt.Before(since) {
		afterAt, afterID = since, "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.db.Query(ctx, `SELECT id::text, user_id, status, created_at FROM orders
		WHERE (created_at, id) > ($1, $2::uuid) AND ($4 = '' OR user_id = $4)
		ORDER BY created_at, id LIMIT $3`, afterAt, afterID, limit+1, userID)
	if err != nil {
		return List{}, fmt.Errorf("list orders: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var o Summary
		err := r.Scan(&o.OrderID, &o.UserID, &o.Status, &o.CreatedAt)
		return o, err
	})
	if err != nil {
		return List{}, fmt.Errorf("list orders: %w", err)
	}
	l := List{Orders: out}
	if len(out) > limit {
		l.Orders = out[:limit]
		l.Next = out[limit-1].OrderID
	}
	if l.Orders == nil {
		l.Orders = []Summary{}
	}
	return l, nil
}

// ApplyStatuses projects a batch of saga status events in one transaction,
// the statements pipelined. Each event adds its history row once per seq;
// the order's status only ever moves to a higher seq, so stale and repeated
// events change nothing; events of unknown orders are ignored. It returns
// how many history rows were new.
func (s *Store) ApplyStatuses(ctx context.Context, es []event.OrderStatusChanged) (int, error) {
	if len(es) == 0 {
		return 0, nil
	}
	applied := 0
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, e := range es {
			b.Queue(`INSERT INTO order_history (order_id, seq, status, at, reason)
				SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM orders WHERE id = $1)
				ON CONFLICT (order_id, seq) DO NOTHING`, e.OrderID, e.Seq, e.Status, e.At.UTC(), e.Reason)
			b.Queue(`UPDATE orders SET status = $2, status_seq = $3, updated_at = $4,
				failure_reason = CASE WHEN $5 <> '' THEN $5 ELSE failure_reason END
				WHERE id = $1 AND status_seq < $3`, e.OrderID, e.Status, e.Seq, e.At.UTC(), e.Reason)
		}
		br := tx.SendBatch(ctx, b)
		for i := range es {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("insert history of %s: %w", es[i].OrderID, err)
			}
			applied += int(tag.RowsAffected())
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("update status of %s: %w", es[i].OrderID, err)
			}
		}
		return br.Close()
	})
	return applied, err
}
