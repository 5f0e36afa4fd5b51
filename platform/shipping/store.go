package shipping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/idempotency"
)

// Sentinel errors of the Shipping service.
var (
	ErrNotFound         = errors.New("shipping: not found")
	ErrKeyReused        = errors.New("shipping: idempotency key or order reused with a different request")
	ErrAlreadyDelivered = errors.New("shipping: shipment already delivered")
	ErrCancelled        = errors.New("shipping: shipment cancelled")
)

// Store is the shipping schema.
type Store struct{ idempotency.Schema }

// NewStore returns the store on db, whose search_path is the shipping schema.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{idempotency.NewSchema(db, idempotency.Scope{Name: Schema, Reused: ErrKeyReused, Saga: SagaKeys},
		event.TopicShipping, Source)}
}

// trackingNumber derives a carrier-style tracking number from the shipment id.
func trackingNumber(id string) string {
	return "STP" + strings.ToUpper(strings.ReplaceAll(id, "-", "")[:16])
}

const shipmentCols = `SELECT id::text, order_id, tracking_number, status, created_at, cancelled_at, delivered_at FROM shipments `

func scanShipment(row pgx.CollectableRow) (Shipment, error) {
	var s Shipment
	err := row.Scan(&s.ShipmentID, &s.OrderID, &s.TrackingNumber, &s.Status, &s.CreatedAt, &s.CancelledAt, &s.DeliveredAt)
	s.CreatedAt = s.CreatedAt.UTC()
	for _, t := range []**time.Time{&s.CancelledAt, &s.DeliveredAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return s, err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// shipments reads the shipments matching where, locking them when forUpdate is set.
func shipments(ctx context.Context, q querier, where string, forUpdate bool, args ...any) ([]Shipment, error) {
	sql := shipmentCols + where + " ORDER BY created_at, id"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read shipments: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanShipment)
	if err != nil {
		return nil, fmt.Errorf("read shipments: %w", err)
	}
	if out == nil {
		out = []Shipment{}
	}
	return out, nil
}

// Create books the order's shipment, in one transaction with its
// idempotency record and its outbox event. See the package comment.
func (s *Store) Create(ctx context.Context, req CreateRequest, key, correlationID string, now time.Time) (idempotency.Result, error) {
	now, correlationID = idempotency.Stamp(now, correlationID, req.OrderID)
	content := idempotency.Hash([]any{req.Items, req.Address})
	res, err := s.Do(ctx, key, req.OrderID, req, now, func(tx pgx.Tx, in *idempotency.Request) (err error) {
		// One shipment per order: another key for the same content gets it as it is now.
		var existingContent []byte
		err = tx.QueryRow(ctx, "SELECT content_hash FROM shipments WHERE order_id = $1", req.OrderID).Scan(&existingContent)
		switch {
		case err == nil:
			if string(existingContent) != string(content) {
				return ErrKeyReused
			}
			ss, err := shipments(ctx, tx, "WHERE order_id = $1", false, req.OrderID)
			if err != nil || len(ss) != 1 {
				return fmt.Errorf("read shipment of %s: %v", req.OrderID, err)
			}
			return in.RecordReplay(ctx, http.StatusCreated, ss[0])
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read shipment of %s: %w", req.OrderID, err)
		}
		if closed, err := in.RefuseClosed(ctx, ErrCodeOrderClosed); err != nil || closed {
			return err
		}
		if field := undeliverable(req.Address); field != "" {
			return in.Record(ctx, http.StatusUnprocessableEntity, map[string]string{"error": ErrCodeUndeliverable, "field": field, "orderId": req.OrderID}, ErrCodeUndeliverable)
		}

		id := uuid.NewString()
		sh := Shipment{ShipmentID: id, OrderID: req.OrderID, TrackingNumber: trackingNumber(id), Status: StatusCreated, CreatedAt: now}
		items, _ := json.Marshal(req.Items)
		addr, _ := json.Marshal(req.Address)
		if _, err := tx.Exec(ctx, `INSERT INTO shipments (id, order_id, idempotency_key, content_hash, status, tracking_number, items, address, correlation_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, req.OrderID, key, content, sh.Status, sh.TrackingNumber, items, addr, correlationID, now); err != nil {
			return fmt.Errorf("insert shipment: %w", err)
		}
		if err := s.Events.Add(ctx, tx, req.OrderID, event.ShipmentCreated{OrderID: req.OrderID, ShipmentID: id, TrackingNumber: sh.TrackingNumber}, correlationID, now); err != nil {
			return err
		}
		return in.Record(ctx, http.StatusCreated, sh, StatusCreated)
	})
	if err != nil {
		return idempotency.Result{}, fmt.Errorf("create shipment for order %s: %w", req.OrderID, err)
	}
	return res, nil
}

// Shipments returns the shipments of an order (at most one).
func (s *Store) Shipments(ctx context.Context, orderID string) (ShipmentList, error) {
	ss, err := shipments(ctx, s.DB, "WHERE order_id = $1", false, orderID)
	return ShipmentList{OrderID: orderID, Shipments: ss}, err
}

// transition moves the locked shipment sh to status to (cancelled or
// delivered), publishing its event; a shipment already there is left as it is.
func (s *Store) transition(ctx context.Context, tx pgx.Tx, sh *Shipment, to, correlationID string, now time.Time) (bool, error) {
	if sh.Status == to {
		return false, nil
	}
	if sh.Status == StatusDelivered {
		return false, ErrAlreadyDelivered
	}
	if sh.Status == StatusCancelled {
		return false, ErrCancelled
	}
	var p event.Payload
	if to == StatusCancelled {
		sh.CancelledAt = &now
		p = event.ShipmentCancelled{OrderID: sh.OrderID, ShipmentID: sh.ShipmentID}
		if _, err := tx.Exec(ctx, "UPDATE shipments SET status = $2, cancelled_at = $3 WHERE id = $1", sh.ShipmentID, to, now); err != nil {
			return false, fmt.Errorf("cancel shipment: %w", err)
		}
		if err := idempotency.CloseOrder(ctx, tx, sh.OrderID, now); err != nil {
			return false, err
		}
	} else {
		sh.DeliveredAt = &now
		p = event.ShipmentDelivered{OrderID: sh.OrderID, ShipmentID: sh.ShipmentID}
		if _, err := tx.Exec(ctx, "UPDATE shipments SET status = $2, delivered_at = $3 WHERE id = $1", sh.ShipmentID, to, now); err != nil {
			return false, fmt.Errorf("deliver shipment: %w", err)
		}
	}
	sh.Status = to
	if err := s.Events.Add(ctx, tx, sh.OrderID, p, correlationID, now); err != nil {
		return false, err
	}
	return true, nil
}

// change applies transition to shipment id under its order's lock.
func (s *Store) change(ctx context.Context, id, to, correlationID string, now time.Time) (sh Shipment, changed bool, err error) {
	orderID, err := s.OrderOf(ctx, "shipment", id, ErrNotFound)
	if err != nil {
		return sh, false, err
	}
	now, correlationID = idempotency.Stamp(now, correlationID, orderID)
	err = s.Locked(ctx, orderID, func(tx pgx.Tx) error {
		ss, err := shipments(ctx, tx, "WHERE id = $1", true, id)
		if err != nil {
			return err
		}
		if len(ss) != 1 {
			return ErrNotFound
		}
		sh = ss[0]
		if to == StatusCancelled && sh.Status == StatusCreated {
			if err := s.Keys.Guard(ctx, tx, orderID, ""); err != nil {
				return err
			}
		}
		changed, err = s.transition(ctx, tx, &sh, to, correlationID, now)
		return err
	})
	if err != nil {
		return Shipment{}, false, fmt.Errorf("%s shipment %s: %w", to, id, err)
	}
	return sh, changed, nil
}

// Cancel cancels shipment id and closes its order; cancelling a cancelled
// shipment changes nothing, a delivered one is ErrAlreadyDelivered, one the
// order's saga made while the order is open is ErrSagaOwned.
func (s *Store) Cancel(ctx context.Context, id, correlationID string, now time.Time) (Shipment, bool, error) {
	return s.change(ctx, id, StatusCancelled, correlationID, now)
}

// Deliver records the delivery of shipment id; delivering a delivered
// shipment changes nothing, a cancelled one is ErrCancelled.
func (s *Store) Deliver(ctx context.Context, id, correlationID string, now time.Time) (Shipment, bool, error) {
	return s.change(ctx, id, StatusDelivered, correlationID, now)
}

// CancelByOrder cancels whatever shipment the order has and closes the
// order, so a create that arrives later ships nothing. It is how a
// compensation undoes a create whose response was lost; an order without a
// shipment gets an empty list. A delivered shipment is ErrAlreadyDelivered
// (and the order is not closed).
func (s *Store) CancelByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (ShipmentList, int, error) {
	now, correlationID = idempotency.Stamp(now, correlationID, orderID)
	var out ShipmentList
	var n int
	err := s.Undo(ctx, orderID, key, now, func(tx pgx.Tx) error {
		n = 0
		ss, err := shipments(ctx, tx, "WHERE order_id = $1", true, orderID)
		if err != nil {
			return err
		}
		for i := range ss {
			changed, err := s.transition(ctx, tx, &ss[i], StatusCancelled, correlationID, now)
			if err != nil {
				return err
			}
			if changed {
				n++
			}
		}
		out = ShipmentList{OrderID: orderID, Shipments: ss}
		return nil
	})
	if err != nil {
		return ShipmentList{}, 0, fmt.Errorf("cancel shipments of order %s: %w", orderID, err)
	}
	return out, n, nil
}
