// Package shipping is the Shipping service: it books one shipment per order,
// cancels it, and records its delivery. It owns the shipping schema and
// publishes shipment.created, shipment.cancelled and shipment.delivered to
// the shipping topic through the outbox (the orchestrator turns
// shipment.delivered into the workflow's delivered signal).
//
// Tables (read directly by the chaos verifier):
//
//	shipments(id PK, order_id UNIQUE, idempotency_key, status created|cancelled|delivered,
//	          tracking_number, items, address, created_at, cancelled_at, delivered_at)
//	idempotency_keys(key PK, order_id, request_hash, status_code, response, created_at)
//	closed_orders(order_id PK, closed_at)   orders whose shipment was cancelled (compensated)
//
// Rules: one shipment per order. Every create is answered from the first
// result of its idempotency key (Idempotency-Key, the saga sends
// "{orderId}:ship", or "order:"+orderId without one), including the 422
// undeliverable (country XX or postal code 00000). A create for a cancelled
// (closed) order is answered 409 order_closed. Cancel and deliver are
// idempotent; cancelling a delivered shipment, or delivering a cancelled
// one, is a 409.
//
// It must never call another service.
package shipping

import (
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "shipping"

// Source names this service in event envelopes.
const Source = "shipping-service"

// Routes, as the Router registers them (fill the wildcards with web.Path).
const (
	PathShipments     = "/v1/shipments"              // POST: create; GET ?orderId=: list
	PathCancel        = "/v1/shipments/{id}/cancel"  // POST
	PathDeliver       = "/v1/shipments/{id}/deliver" // POST
	PathCancelByOrder = "/v1/shipments/cancel"       // POST ?orderId=: cancel whatever the order has
)

// SagaKeys are the keys the order saga sends Shipping: {orderId}:ship for
// its shipment, {orderId}:cancel-shipment for the cancel by order id that
// compensates it. A shipment made under the first is cancelled only under
// the second while its order is open (idempotency.SagaKeys says why): a
// cancel by shipment id, or by order id without the saga's key, is a 409
// saga_owned. Delivering is never refused.
var SagaKeys = idempotency.SagaKeys{Step: "ship", Undo: "cancel-shipment"}

// Shipment statuses.
const (
	StatusCreated   = "created"
	StatusCancelled = "cancelled"
	StatusDelivered = "delivered"
)

// Error codes in the "error" field.
const (
	ErrCodeUndeliverable    = "undeliverable"             // 422 {"error":"undeliverable","field":"address.country"|"address.postalCode"}
	ErrCodeKeyReused        = idempotency.CodeKeyReused   // 422
	ErrCodeOrderClosed      = idempotency.CodeOrderClosed // 409
	ErrCodeAlreadyDelivered = "already_delivered"         // 409 on cancel
	ErrCodeCancelled        = "shipment_cancelled"        // 409 on deliver
	ErrCodeSagaOwned        = idempotency.CodeSagaOwned   // 409 on cancel: the order's saga made the shipment; only its compensation cancels it
)

// Test address values that cannot be delivered.
const (
	UndeliverableCountry    = "XX"
	UndeliverablePostalCode = "00000"
)

// Limits on a shipment request.
const (
	MaxItems     = 100
	MaxQty       = 1_000_000
	MaxBodyBytes = 64 << 10
	MaxKeyLen    = 255
)

// Item is one line to ship. PriceCents and WarehouseID are optional, so the
// saga may pass the order's lines or the reserved ones as they are.
type Item struct {
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	WarehouseID string `json:"warehouseId,omitempty"`
	PriceCents  int64  `json:"priceCents,omitempty"`
}

// Address is where to ship (the shape of event.Address).
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// CreateRequest is the body of POST /v1/shipments.
type CreateRequest struct {
	OrderID string  `json:"orderId"`
	Items   []Item  `json:"items"`
	Address Address `json:"address"`
}

// Shipment is the 201 body of POST /v1/shipments, the 200 body of cancel
// and deliver, and an entry of the list.
type Shipment struct {
	ShipmentID     string     `json:"shipmentId"`
	OrderID        string     `json:"orderId"`
	TrackingNumber string     `json:"trackingNumber"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"createdAt"`
	CancelledAt    *time.Time `json:"cancelledAt,omitempty"`
	DeliveredAt    *time.Time `json:"deliveredAt,omitempty"`
}

// ShipmentList is the body of GET /v1/shipments?orderId= and of
// POST /v1/shipments/cancel?orderId= (the order's shipments after the call).
type ShipmentList struct {
	OrderID   string     `json:"orderId"`
	Shipments []Shipment `json:"shipments"`
}
