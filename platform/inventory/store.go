package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/idempotency"
)

// Sentinel errors of the Inventory service.
var (
	ErrNotFound  = errors.New("inventory: not found")
	ErrKeyReused = errors.New("inventory: idempotency key or order reused with different items")
)

// Store is the inventory schema.
type Store struct{ idempotency.Schema }

// NewStore returns the store on db, whose search_path is the inventory schema.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{idempotency.NewSchema(db, idempotency.Scope{Name: Schema, Reused: ErrKeyReused, Saga: SagaKeys},
		event.TopicInventory, Source)}
}

// Seed creates SKU-00001 … SKU-{skus} with units on hand each, and SKU-OOS
// with none. Existing SKUs are left as they are, so a restart changes nothing.
func (s *Store) Seed(ctx context.Context, skus int, units int64) error {
	_, err := s.DB.Exec(ctx, `INSERT INTO stock (sku, warehouse_id, on_hand)
		SELECT 'SKU-' || lpad(i::text, 5, '0'), $3, $2 FROM generate_series(1, $1) AS i
		UNION ALL SELECT 'SKU-OOS', $3, 0
		ON CONFLICT (sku) DO NOTHING`, skus, units, DefaultWarehouse)
	if err != nil {
		return fmt.Errorf("seed stock: %w", err)
	}
	return nil
}

// SetStock sets the units on hand of sku, creating it if missing (tests and demos).
func (s *Store) SetStock(ctx context.Context, sku string, onHand int64) error {
	_, err := s.DB.Exec(ctx, `INSERT INTO stock (sku, warehouse_id, on_hand) VALUES ($1, $2, $3)
		ON CONFLICT (sku) DO UPDATE SET on_hand = EXCLUDED.on_hand`, sku, DefaultWarehouse, onHand)
	if err != nil {
		return fmt.Errorf("set stock of %s: %w", sku, err)
	}
	return nil
}

func sameItems(a []ReservedItem, b []Item) bool {
	if len(a) != len(b) {
		return false
	}
	x := make(map[string]int, len(a))
	for _, it := range a {
		x[it.SKU] = it.Qty
	}
	for _, it := range b {
		if x[it.SKU] != it.Qty {
			return false
		}
	}
	return true
}

// Reserve holds req's items for its order, all or nothing, in one
// transaction with the reservation, its idempotency record and its outbox
// event. See the package comment for the rules.
func (s *Store) Reserve(ctx context.Context, req ReserveRequest, key, correlationID string, now time.Time) (idempotency.Result, error) {
	now, correlationID = idempotency.Stamp(now, correlationID, req.OrderID)
	res, err := s.Do(ctx, key, req.OrderID, req, now, func(tx pgx.Tx, in *idempotency.Request) (err error) {
		// One reservation per order: another key for the same order and
		// items gets that reservation as it is now.
		if existing, err := reservationByOrder(ctx, tx, req.OrderID); err == nil {
			if !sameItems(existing.Items, req.Items) {
				return ErrKeyReused
			}
			return in.RecordReplay(ctx, http.StatusCreated, existing)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if closed, err := in.RefuseClosed(ctx, ErrCodeOrderClosed); err != nil || closed {
			return err
		}

		skus := make([]string, len(req.Items))
		qtys := make([]int64, len(req.Items))
		for i, it := range req.Items {
			skus[i], qtys[i] = it.SKU, int64(it.Qty)
		}
		if failpoint.Armed(FailReservePerLine) {
			short, err := s.holdPerLine(ctx, req.Items)
			if err != nil {
				return err
			}
			if short != nil {
				return in.Record(ctx, http.StatusConflict, *short, ErrCodeOutOfStock)
			}
		}
		// Lock the rows in SKU order so two reservations never wait on each other in a cycle.
		rows, err := tx.Query(ctx, `SELECT sku, warehouse_id, on_hand - reserved FROM stock
			WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus)
		if err != nil {
			return fmt.Errorf("lock stock: %w", err)
		}
		type row struct {
			warehouse string
			available int64
		}
		stock := map[string]row{}
		for rows.Next() {
			var sku string
			var r row
			if err := rows.Scan(&sku, &r.warehouse, &r.available); err != nil {
				rows.Close()
				return fmt.Errorf("read stock: %w", err)
			}
			stock[sku] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read stock: %w", err)
		}
		items := make([]ReservedItem, len(req.Items))
		for i, it := range req.Items {
			st, ok := stock[it.SKU]
			if ok && failpoint.Armed(FailReservePerLine) {
				st.available += int64(it.Qty) // already held, line by line
			}
			if !ok {
				return in.Record(ctx, http.StatusConflict, OutOfStock{Error: ErrCodeOutOfStock, SKU: it.SKU, Requested: it.Qty, Reason: "unknown_sku"}, ErrCodeOutOfStock)
			}
			if st.available < int64(it.Qty) {
				return in.Record(ctx, http.StatusConflict, OutOfStock{Error: ErrCodeOutOfStock, SKU: it.SKU, Requested: it.Qty, Available: st.available}, ErrCodeOutOfStock)
			}
			items[i] = ReservedItem{SKU: it.SKU, Qty: it.Qty, WarehouseID: st.warehouse}
		}

		if !failpoint.Armed(FailReservePerLine) {
			if _, err := tx.Exec(ctx, `UPDATE stock SET reserved = stock.reserved + v.qty
			FROM unnest($1::text[], $2::bigint[]) AS v(sku, qty) WHERE stock.sku = v.sku`, skus, qtys); err != nil {
				return fmt.Errorf("hold stock: %w", err)
			}
		}
		r := Reservation{ReservationID: uuid.NewString(), OrderID: req.OrderID, Items: items, Status: StatusReserved, CreatedAt: now}
		if _, err := tx.Exec(ctx, `INSERT INTO reservations (id, order_id, idempotency_key, status, correlation_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, r.ReservationID, r.OrderID, key, r.Status, correlationID, now); err != nil {
			return fmt.Errorf("insert reservation: %w", err)
		}
		whs := make([]string, len(items))
		lines := make([]int32, len(items))
		for i, it := range items {
			whs[i], lines[i] = it.WarehouseID, int32(i)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reservation_items (reservation_id, line, sku, qty, warehouse_id)
			SELECT $1, v.line, v.sku, v.qty, v.wh FROM unnest($2::int[], $3::text[], $4::bigint[], $5::text[]) AS v(line, sku, qty, wh)`,
			r.ReservationID, lines, skus, qtys, whs); err != nil {
			return fmt.Errorf("insert reservation items: %w", err)
		}
		evItems := make([]event.ReservedItem, len(items))
		for i, it := range items {
			evItems[i] = event.ReservedItem(it)
		}
		if err := s.Events.Add(ctx, tx, r.OrderID, event.InventoryReserved{OrderID: r.OrderID, ReservationID: r.ReservationID, Items: evItems}, correlationID, now); err != nil {
			return err
		}
		return in.Record(ctx, http.StatusCreated, r, StatusReserved)
	})
	if err != nil {
		return idempotency.Result{}, fmt.Errorf("reserve for order %s: %w", req.OrderID, err)
	}
	return res, nil
}

// holdPerLine is FailReservePerLine: each line is held by a statement of its
// own, outside the reservation's transaction, in SKU order; at the first
// line that is short it stops and answers out of stock, and what the lines
// before it hold stays held.
func (s *Store) holdPerLine(ctx context.Context, items []Item) (*OutOfStock, error) {
	sorted := append([]Item(nil), items...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].SKU < sorted[b].SKU })
	for _, it := range sorted {
		tag, err := s.DB.Exec(ctx, `UPDATE stock SET reserved = reserved + $2 WHERE sku = $1 AND on_hand - reserved >= $2`, it.SKU, int64(it.Qty))
		if err != nil {
			return nil, fmt.Errorf("hold %s: %w", it.SKU, err)
		}
		if tag.RowsAffected() == 0 {
			return &OutOfStock{Error: ErrCodeOutOfStock, SKU: it.SKU, Requested: it.Qty}, nil
		}
	}
	return nil, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const reservationCols = `SELECT r.id::text, r.order_id, r.status, r.created_at, r.released_at,
	COALESCE(json_agg(json_build_object('sku', i.sku, 'qty', i.qty, 'warehouseId', i.warehouse_id) ORDER BY i.line)
		FILTER (WHERE i.sku IS NOT NULL), '[]')
	FROM reservations r LEFT JOIN reservation_items i ON i.reservation_id = r.id `

func reservations(ctx context.Context, q querier, where string, args ...any) ([]Reservation, error) {
	rows, err := q.Query(ctx, reservationCols+where+" GROUP BY r.id ORDER BY r.created_at, r.id", args...)
	if err != nil {
		return nil, fmt.Errorf("read reservations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Reservation, error) {
		var r Reservation
		var items []byte
		if err := row.Scan(&r.ReservationID, &r.OrderID, &r.Status, &r.CreatedAt, &r.ReleasedAt, &items); err != nil {
			return r, err
		}
		r.CreatedAt = r.CreatedAt.UTC()
		if r.ReleasedAt != nil {
			t := r.ReleasedAt.UTC()
			r.ReleasedAt = &t
		}
		return r, json.Unmarshal(items, &r.Items)
	})
	if err != nil {
		return nil, fmt.Errorf("read reservations: %w", err)
	}
	if out == nil {
		out = []Reservation{}
	}
	return out, nil
}

func reservationByOrder(ctx context.Context, q querier, orderID string) (Reservation, error) {
	rs, err := reservations(ctx, q, "WHERE r.order_id = $1", orderID)
	if err != nil {
		return Reservation{}, err
	}
	if len(rs) == 0 {
		return Reservation{}, ErrNotFound
	}
	return rs[0], nil
}

// Reservations returns the reservations of an order (at most one).
func (s *Store) Reservations(ctx context.Context, orderID string) (ReservationList, error) {
	rs, err := reservations(ctx, s.DB, "WHERE r.order_id = $1", orderID)
	return ReservationList{OrderID: orderID, Reservations: rs}, err
}

// Stock returns the stock of sku.
func (s *Store) Stock(ctx context.Context, sku string) (Stock, error) {
	st := Stock{SKU: sku}
	err := s.DB.QueryRow(ctx, "SELECT warehouse_id, on_hand, reserved FROM stock WHERE sku = $1", sku).
		Scan(&st.WarehouseID, &st.OnHand, &st.Reserved)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, ErrNotFound
	}
	if err != nil {
		return st, fmt.Errorf("read stock of %s: %w", sku, err)
	}
	st.Available = st.OnHand - st.Reserved
	return st, nil
}

// Release gives back the stock of reservation id and closes its order. A
// released reservation is returned as it is; released reports whether this
// call released it.
func (s *Store) Release(ctx context.Context, id, correlationID string, now time.Time) (r Reservation, released bool, err error) {
	orderID, err := s.OrderOf(ctx, "reservation", id, ErrNotFound)
	if err != nil {
		return r, false, err
	}
	l, n, err := s.ReleaseByOrder(ctx, orderID, "", correlationID, now)
	if err != nil {
		return r, false, err
	}
	for _, x := range l.Reservations {
		if x.ReservationID == id {
			return x, n > 0, nil
		}
	}
	return r, false, ErrNotFound
}

// ReleaseByOrder releases whatever the order holds and closes the order, so
// a reserve that arrives later holds nothing (ErrSagaOwned when the saga
// reserved it and key is not its compensation's). It is how a compensation
// undoes a reservation whose response was lost; an order that never held
// anything is answered with an empty list. It returns the order's
// reservations after the call and how many this call released.
func (s *Store) ReleaseByOrder(ctx context.Context, orderID, key, correlationID string, now time.Time) (ReservationList, int, error) {
	now, correlationID = idempotency.Stamp(now, correlationID, orderID)
	var out ReservationList
	var n int
	err := s.Undo(ctx, orderID, key, now, func(tx pgx.Tx) error {
		n = 0
		rs, err := reservations(ctx, tx, "WHERE r.order_id = $1", orderID)
		if err != nil {
			return err
		}
		for i, r := range rs {
			if r.Status != StatusReserved || failpoint.Armed(FailReleaseNothing) {
				continue
			}
			items := append([]ReservedItem(nil), r.Items...)
			sort.Slice(items, func(a, b int) bool { return items[a].SKU < items[b].SKU })
			skus := make([]string, len(items))
			qtys := make([]int64, len(items))
			for j, it := range items {
				skus[j], qtys[j] = it.SKU, int64(it.Qty)
			}
			if _, err := tx.Exec(ctx, "SELECT 1 FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE", skus); err != nil {
				return fmt.Errorf("lock stock: %w", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE stock SET reserved = stock.reserved - v.qty
				FROM unnest($1::text[], $2::bigint[]) AS v(sku, qty) WHERE stock.sku = v.sku`, skus, qtys); err != nil {
				return fmt.Errorf("give back stock: %w", err)
			}
			if _, err := tx.Exec(ctx, "UPDATE reservations SET status = $2, released_at = $3 WHERE id = $1",
				r.ReservationID, StatusReleased, now); err != nil {
				return fmt.Errorf("mark released: %w", err)
			}
			if err := s.Events.Add(ctx, tx, orderID, event.InventoryReleased{OrderID: orderID, ReservationID: r.ReservationID}, correlationID, now); err != nil {
				return err
			}
			rs[i].Status, rs[i].ReleasedAt = StatusReleased, &now
			n++
		}
		out = ReservationList{OrderID: orderID, Reservations: rs}
		return nil
	})
	if err != nil {
		return ReservationList{}, 0, fmt.Errorf("release order %s: %w", orderID, err)
	}
	return out, n, nil
}
