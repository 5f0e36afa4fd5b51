package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/vault"
	"github.com/stampede-dev/stampede/platform/web"
)

// Sentinel errors of the Payments service.
var (
	ErrNotFound      = errors.New("payment: not found")
	ErrKeyReused     = errors.New("payment: idempotency key reused with a different body")
	ErrNotRefundable = errors.New("payment: a declined charge has nothing to refund")
)

// Store is the payments schema.
type Store struct{ idempotency.Schema }

// NewStore returns the store on db, whose search_path is the payments schema.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{idempotency.NewSchema(db, idempotency.Scope{Name: Schema, Reused: ErrKeyReused, Saga: SagaKeys},
		event.TopicPayments, Source)}
}

// Charge captures (or declines, for the test tokens) req under key, in one
// transaction with its idempotency record and its outbox event; it returns
// only once that transaction is committed.
func (s *Store) Charge(ctx context.Context, req ChargeRequest, key, correlationID string, now time.Time) (idempotency.Result, error) {
	now, correlationID = idempotency.Stamp(now, correlationID, req.OrderID)
	res, err := s.Do(ctx, key, req.OrderID, req, now, func(tx pgx.Tx, in *idempotency.Request) (err error) {
		if closed, err := in.RefuseClosed(ctx, ErrCodeOrderClosed); err != nil || closed {
			return err
		}

		token := req.Token
		if req.PaymentRef != "" {
			// Taken in this transaction: a charge that rolls back leaves it for its retry.
			if token, err = vault.Take(ctx, tx, req.PaymentRef); errors.Is(err, vault.ErrUnknownRef) {
				return web.Errorf(http.StatusBadRequest, "paymentRef", "unknown or already used payment reference")
			} else if err != nil {
				return err
			}
		}
		id := uuid.NewString()
		code := decline(token)
		status := StatusCaptured
		if code != "" {
			status = StatusDeclined
		}
		if _, err := tx.Exec(ctx, `INSERT INTO charges (id, order_id, idempotency_key, status, decline_code, amount_cents, currency, correlation_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, req.OrderID, key, status, code, req.AmountCents, req.Currency, correlationID, now); err != nil {
			return fmt.Errorf("insert charge: %w", err)
		}
		if code != "" {
			return in.Record(ctx, http.StatusPaymentRequired, Declined{Error: code, ChargeID: id, OrderID: req.OrderID}, code)
		}
		if err := s.Events.Add(ctx, tx, req.OrderID, event.PaymentCompleted{OrderID: req.OrderID, PaymentID: id, AmountCents: req.AmountCents,
			Currency: req.Currency, Method: "card"}, correlationID, now); err != nil {
			return err
		}
		return in.Record(ctx, http.StatusCreated, ChargeResponse{ChargeID: id, OrderID: req.OrderID, Status: StatusCaptured,
			AmountCents: req.AmountCents, Currency: req.Currency, CreatedAt: now}, StatusCaptured)
	})
	if err != nil {
		return idempotency.Result{}, fmt.Errorf("charge order %s: %w", req.OrderID, err)
	}
	return res, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func refunds(ctx context.Context, q querier, orderID string) ([]Refund, error) {
	rows, err := q.Query(ctx, `SELECT id::text, charge_id::text, order_id, amount_cents, currency, created_at
		FROM refunds WHERE order_id = $1 ORDER BY created_at, id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Refund, error) {
		var r Refund
		err := row.Scan(&r.RefundID, &r.ChargeID, &r.OrderID, &r.AmountCents, &r.Currency, &r.CreatedAt)
		r.CreatedAt = r.CreatedAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	if out == nil {
		out = []Refund{}
	}
	return out, nil
}

// Charges returns the charges of an order, oldest first, each with its refunds.
func (s *Store) Charges(ctx context.Context, orderID string) (ChargeList, error) {
	rows, err := s.DB.Query(ctx, `SELECT id::text, order_id, idempotency_key, status, decline_code, amount_cents, currency, created_at
		FROM charges WHERE order_id = $1 ORDER BY created_at, id`, orderID)
	if err != nil {
		return ChargeList{}, fmt.Errorf("read charges of %s: %w", orderID, err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Charge, error) {
		var c Charge
		err := row.Scan(&c.ChargeID, &c.OrderID, &c.IdempotencyKey, &c.Status, &c.DeclineCode, &c.AmountCents, &c.Currency, &c.CreatedAt)
		c.CreatedAt = c.CreatedAt.UTC()
		c.Refunds = []Refund{}
		return c, err
	})
	if err != nil {
		return ChargeList{}, fmt.Errorf("read charges of %s: %w", orderID, err)
	}
	rs, err := refunds(ctx, s.DB, orderID)
	if err != nil {
		return ChargeList{}, err
	}
	for _, r := range rs {
		for i := range cs {
			if cs[i].ChargeID == r.ChargeID {
				cs[i].Refunds = append(cs[i].Refunds, r)
			}
		}
	}
	if cs == nil {
		cs = []Charge{}
	}
	return ChargeList{OrderID: orderID, Charges: cs}, nil
}

// refundLocked refunds charge id in full unless it already is; the caller
// holds the order's lock. It returns the refund and whether it is new.
func (s *Store) refundLocked(ctx context.Context, tx pgx.Tx, id, correlationID string, now time.Time) (Refund, bool, error) {
	var r Refund
	var status string
	err := tx.QueryRow(ctx, `SELECT order_id, status, amount_cents, currency FROM charges WHERE id = $1 FOR UPDATE`, id).
		Scan(&r.OrderID, &status, &r.AmountCents, &r.Currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, ErrNotFound
	}
	if err != nil {
		return r, false, fmt.Errorf("lock charge %s: %w", id, err)
	}
	if status == StatusDeclined {
		return r, false, ErrNotRefundable
	}
	err = tx.QueryRow(ctx, `SELECT id::text, charge_id::text, order_id, amount_cents, currency, created_at FROM refunds WHERE charge_id = $1`, id).
		Scan(&r.RefundID, &r.ChargeID, &r.OrderID, &r.AmountCents, &r.Currency, &r.CreatedAt)
	if err == nil {
		r.CreatedAt = r.CreatedAt.UTC()
		return r, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return r, false, fmt.Errorf("read refund of %s: %w", id, err)
	}
	r.RefundID, r.ChargeID, r.CreatedAt = uuid.NewString(), id, now
	if _, err := tx.Exec(ctx, `INSERT INTO refunds (id, charge_id, order_id, amount_cents, currency, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.RefundID, id, r.OrderID, r.AmountCents, r.Currency, now); err != nil {
		return r, false, fmt.Errorf("insert refund: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE charges SET status = $2, refunded_at = $3 WHERE id = $1`, id, StatusRefunded, now); err != nil {
		return r, false, fmt.Errorf("mark refunded: %w", err)
	}
	if err := s.Events.Add(ctx, tx, r.OrderID, event.PaymentRefunded{OrderID: r.OrderID, PaymentID: id, RefundID: r.RefundID,
		AmountCents: r.AmountCents, Currency: r.Currency}, correlationID, now); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// Refund refunds charge id in full and closes its order; a refunded charge
// returns its one refund (created false). A charge the order's saga made is
// refunded only by its compensation while the order is open: ErrSagaOwned.
func (s *Store) Refund(ctx context.Context, id, correlationID string, now time.Time) (r Refund, created bool, err error) {
	orderID, err := s.OrderOf(ctx, "charge", id, ErrNotFound)
	if err != nil {
		return r, false, err
	}
	now, correlationID = idempotency.Stamp(now, correlationID, orderID)
	err = s.Locked(ctx, orderID, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, "SELECT status FROM charges WHERE id = $1", id).Scan(&status); err == nil && status == StatusDeclined {
			return ErrNotRefundable // no money moved: nothing of the saga's to guard
		}
		if err := s.Keys.Guard(ctx, tx, orderID, ""); err != nil {
			return err
		}
		if r, created, err = s.refundLocked(ctx, tx, id, correlationID, now); err != nil {
			return err
		}
		return idempotency.CloseOrder(ctx, tx, orderID, now)
	})
	if err != nil {
		return Refund{}, false, fmt.Errorf("refund charge %s: %w", id, err)
	}
	return r, created, nil
}

// RefundByOrder refunds every captured charge of the order and closes it
// (ErrSagaOwned when the saga charged it and key is not its compensation's),
// so a charge that arrives later moves no money. It waits for a charge of
// the order in flight (same lock). It returns every refund of the order
// after the call and how many this call made; an order never charged gets
// an empty list.
func (s *Store) RefundByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (OrderRefunds, int, error) {
	now, correlationID = idempotency.Stamp(now, correlationID, orderID)
	var out OrderRefunds
	var n int
	err := s.Undo(ctx, orderID, key, now, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, "SELECT id::text FROM charges WHERE order_id = $1 AND status = $2 ORDER BY id", orderID, StatusCaptured)
		if err != nil {
			return fmt.Errorf("find captured charges: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("find captured charges: %w", err)
		}
		for _, id := range ids {
			if _, created, err := s.refundLocked(ctx, tx, id, correlationID, now); err != nil {
				return err
			} else if created {
				n++
			}
		}
		rs, err := refunds(ctx, tx, orderID)
		out = OrderRefunds{OrderID: orderID, Refunds: rs}
		return err
	})
	if err != nil {
		return OrderRefunds{}, 0, fmt.Errorf("refund order %s: %w", orderID, err)
	}
	return out, n, nil
}
