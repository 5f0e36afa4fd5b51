// Package inventory is the Inventory service: stock per SKU, and
// reservations that hold stock for an order until they are released. It
// owns the inventory schema and publishes inventory.reserved and
// inventory.released to the inventory topic through the outbox.
//
// Tables (read directly by the chaos verifier):
//
//	stock(sku PK, warehouse_id, on_hand, reserved)       available = on_hand - reserved
//	reservations(id PK, order_id UNIQUE, idempotency_key, status reserved|released, created_at, released_at)
//	reservation_items(reservation_id, sku, qty, warehouse_id)   PK (reservation_id, sku)
//	idempotency_keys(key PK, order_id, request_hash, status_code, response, created_at)
//	closed_orders(order_id PK, closed_at)   orders whose reservation was released (compensated)
//
// Rules: one reservation per order. A reservation holds stock (reserved
// grows) until released; a released reservation never holds again. Every
// request is answered from the first result of its idempotency key (the
// Idempotency-Key header, or "order:"+orderId without one), including an
// out-of-stock 409. A reserve for an order that was released (closed) is
// answered 409 order_closed, so a reserve that arrives after its
// compensation never holds stock. Unknown SKUs answer 409 out_of_stock with
// "reason":"unknown_sku" (a business failure: the order can never be
// fulfilled). Stock rows are locked in SKU order inside one transaction, so
// concurrent reservations never oversell and never deadlock.
//
// It must never call another service.
package inventory

import (
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "inventory"

// Source names this service in event envelopes.
const Source = "inventory-service"

// Routes, as the Router registers them (fill the wildcards with web.Path).
const (
	PathReservations   = "/v1/reservations"              // POST: reserve; GET ?orderId=: list
	PathRelease        = "/v1/reservations/{id}/release" // POST: release by reservation id
	PathReleaseByOrder = "/v1/reservations/release"      // POST ?orderId=: release whatever the order holds
	PathStock          = "/v1/stock/{sku}"               // GET
)

// SagaKeys are the keys the order saga sends Inventory: {orderId}:reserve
// for its reservation, {orderId}:release for the release by order id that
// compensates it. A reservation made under the first is released only under
// the second while its order is open (idempotency.SagaKeys says why): a
// release by reservation id, or by order id without the saga's key, is a
// 409 saga_owned.
var SagaKeys = idempotency.SagaKeys{Step: "reserve", Undo: "release"}

// Reservation statuses.
const (
	StatusReserved = "reserved"
	StatusReleased = "released"
)

// Error codes in the "error" field of 409 bodies.
const (
	ErrCodeOutOfStock  = "out_of_stock"              // {"error":"out_of_stock","sku":...,"requested":n,"available":m[,"reason":"unknown_sku"]}
	ErrCodeOrderClosed = idempotency.CodeOrderClosed // the order's reservation was released; nothing is held
	ErrCodeKeyReused   = idempotency.CodeKeyReused   // 422: same key or order, different items
	ErrCodeSagaOwned   = idempotency.CodeSagaOwned   // 409: the order's saga holds the stock; only its compensation releases it
)

// DefaultWarehouse is where the seeded stock sits.
const DefaultWarehouse = "WH-1"

// Limits on a reservation request.
const (
	MaxItems     = 100
	MaxQty       = 1_000_000
	MaxBodyBytes = 64 << 10
	MaxKeyLen    = 255
)

// Item is one line to reserve.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// ReserveRequest is the body of POST /v1/reservations.
type ReserveRequest struct {
	OrderID string `json:"orderId"`
	Items   []Item `json:"items"`
}

// ReservedItem is a reserved line with the warehouse that holds it. Lines
// of the same SKU are merged, in the order they first appear.
type ReservedItem struct {
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	WarehouseID string `json:"warehouseId"`
}

// Reservation is the 201 body of POST /v1/reservations, the 200 body of a
// release, and an entry of the list.
type Reservation struct {
	ReservationID string         `json:"reservationId"`
	OrderID       string         `json:"orderId"`
	Items         []ReservedItem `json:"items"`
	Status        string         `json:"status"`
	CreatedAt     time.Time      `json:"createdAt"`
	ReleasedAt    *time.Time     `json:"releasedAt,omitempty"`
}

// OutOfStock is the 409 body when a line cannot be held; nothing is held.
type OutOfStock struct {
	Error     string `json:"error"` // out_of_stock
	SKU       string `json:"sku"`
	Requested int    `json:"requested"`
	Available int64  `json:"available"`
	Reason    string `json:"reason,omitempty"` // unknown_sku when the SKU does not exist
}

// Stock is the body of GET /v1/stock/{sku}.
type Stock struct {
	SKU         string `json:"sku"`
	WarehouseID string `json:"warehouseId"`
	OnHand      int64  `json:"onHand"`
	Reserved    int64  `json:"reserved"`
	Available   int64  `json:"available"`
}

// ReservationList is the body of GET /v1/reservations?orderId= and of
// POST /v1/reservations/release?orderId= (200, the order's reservations
// after the release; empty when the order never held anything).
type ReservationList struct {
	OrderID      string        `json:"orderId"`
	Reservations []Reservation `json:"reservations"`
}
