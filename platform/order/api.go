// Package order is the Orders service: it accepts orders over HTTP, commits
// each order with its events in one PostgreSQL transaction (the outbox), and
// projects the saga's status events so GET /v1/orders/{id} shows where an
// order is. It owns the orders schema.
//
// It must never call another service or start a workflow itself: the order
// saga reacts to its events.
package order

import (
	"time"

	"github.com/stampede-dev/stampede/platform/event"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "orders"

// Source names this service in event envelopes and Kafka headers.
const Source = "order-service"

// Routes, as the Router registers them (fill the wildcards with web.Path).
const (
	PathOrders  = "/v1/orders"             // POST: create; GET: list
	PathOrder   = "/v1/orders/{id}"        // GET
	PathCancel  = "/v1/orders/{id}/cancel" // POST
	PathOpenAPI = "/openapi.yaml"          // GET: this API's OpenAPI document
)

// Statuses an order goes through. pending is set by the Orders service on
// acceptance; the rest come from the saga.
const (
	StatusPending            = "pending"
	StatusProcessing         = "processing"
	StatusReservingInventory = "reserving_inventory"
	StatusChargingPayment    = "charging_payment"
	StatusCreatingShipment   = "creating_shipment"
	StatusShipped            = "shipped"
	StatusInTransit          = "in_transit"
	StatusDelivered          = "delivered"
	StatusCompensating       = "compensating"
	StatusFailed             = "failed"
	StatusCancelled          = "cancelled"
)

// Terminal reports whether no status follows s.
func Terminal(s string) bool {
	return s == StatusDelivered || s == StatusFailed || s == StatusCancelled
}

// Limits on an order request.
const (
	MaxItems          = 100
	MaxQty            = 1000
	MaxPriceCents     = 100_000_000 // one million in major units per line price
	MaxBodyBytes      = 64 << 10
	MaxIdempotencyKey = 255
)

// CreateRequest is the body of POST /v1/orders.
type CreateRequest struct {
	UserID          string           `json:"userId"`
	Currency        string           `json:"currency"`
	Items           []event.LineItem `json:"items"`
	ShippingAddress event.Address    `json:"shippingAddress"`
	Payment         event.Payment    `json:"payment"`
}

// Total returns the order total in minor units.
func (r CreateRequest) Total() int64 {
	var t int64
	for _, it := range r.Items {
		t += int64(it.Qty) * it.PriceCents
	}
	return t
}

// CreateResponse is the 202 body of POST /v1/orders.
type CreateResponse struct {
	OrderID    string `json:"orderId"`
	Status     string `json:"status"`
	TotalCents int64  `json:"totalCents"`
}

// HistoryEntry is one status change.
type HistoryEntry struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Order is the body of GET /v1/orders/{id}.
type Order struct {
	OrderID         string           `json:"orderId"`
	UserID          string           `json:"userId"`
	Currency        string           `json:"currency"`
	TotalCents      int64            `json:"totalCents"`
	Items           []event.LineItem `json:"items"`
	ShippingAddress event.Address    `json:"shippingAddress"`
	PaymentMethod   string           `json:"paymentMethod"`
	Status          string           `json:"status"`
	FailureReason   string           `json:"failureReason,omitempty"`
	CorrelationID   string           `json:"correlationId"`
	CreatedAt       time.Time        `json:"createdAt"`
	UpdatedAt       time.Time        `json:"updatedAt"`
	History         []HistoryEntry   `json:"history"`
}

// Summary is one entry of GET /v1/orders.
type Summary struct {
	OrderID   string    `json:"orderId"`
	UserID    string    `json:"userId"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

// List is the body of GET /v1/orders.
type List struct {
	Orders []Summary `json:"orders"`
	// Next is the cursor for the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}
