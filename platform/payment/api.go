// Package payment is the Payments service: it captures charges and refunds
// them in full. It owns the payments schema and publishes payment.completed
// and payment.refunded to the payments topic through the outbox.
//
// Tables (read directly by the chaos verifier):
//
//	charges(id PK, order_id, idempotency_key UNIQUE, status captured|refunded|declined,
//	        decline_code, amount_cents, currency, created_at, refunded_at)
//	refunds(id PK, charge_id UNIQUE, order_id, amount_cents, currency, created_at)
//	idempotency_keys(key PK, order_id, request_hash, status_code, response, created_at)
//	closed_orders(order_id PK, closed_at)   orders refunded by order id (compensated)
//
// Money moved for an order = its charges with status captured or refunded
// (declined rows record a 402 so it replays; no money moved). A charge is
// refunded at most once (refunds.charge_id is unique).
//
// Rules: POST /v1/charges needs an Idempotency-Key (the saga sends
// "{orderId}:charge"); a repeat with the same body gets the first answer
// (201 or 402, byte for byte) and changes nothing; another body under the
// same key gets 422 idempotency_key_reused. The charge row is committed
// before the response is written; --charge-latency sleeps inside the
// transaction, before the commit, holding the order's lock, so a refund by
// order id waits for an in-flight charge and then refunds it. After a refund
// by order id the order is closed: a later new charge for it is answered
// 409 order_closed and moves no money.
//
// It must never call another service.
package payment

import (
	"time"

	"github.com/stampede-dev/stampede/platform/idempotency"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "payments"

// Source names this service in event envelopes.
const Source = "payment-service"

// Routes, as the Router registers them (fill the wildcards with web.Path).
const (
	PathCharges       = "/v1/charges"              // POST: charge; GET ?orderId=: list with refunds
	PathRefund        = "/v1/charges/{id}/refunds" // POST: full refund of one charge
	PathRefundByOrder = "/v1/refunds"              // POST ?orderId=: refund every captured charge of the order
)

// SagaKeys are the keys the order saga sends Payments: {orderId}:charge for
// its charge, {orderId}:refund for the refund by order id that compensates
// it. A charge made under the first is refunded only under the second while
// its order is open (idempotency.SagaKeys says why): a refund of it by
// charge id, or by order id without the saga's key, is a 409 saga_owned.
var SagaKeys = idempotency.SagaKeys{Step: "charge", Undo: "refund"}

// Charge statuses.
const (
	StatusCaptured = "captured"
	StatusRefunded = "refunded"
	StatusDeclined = "declined"
)

// Test tokens that decline, and the "error" codes they produce (402).
const (
	TokenDeclined          = "tok_declined"
	TokenInsufficientFunds = "tok_insufficient_funds"

	ErrCodeCardDeclined      = "card_declined"
	ErrCodeInsufficientFunds = "insufficient_funds"
	ErrCodeKeyReused         = idempotency.CodeKeyReused   // 422
	ErrCodeOrderClosed       = idempotency.CodeOrderClosed // 409: the order was refunded by order id
	ErrCodeNotRefundable     = "not_refundable"            // 409: a declined charge has nothing to refund
	ErrCodeSagaOwned         = idempotency.CodeSagaOwned   // 409: the order's saga made the charge; only its compensation refunds it
)

// Limits on a charge request.
const (
	MaxAmountCents = 100_000_000_000 // one billion in major units
	MaxBodyBytes   = 16 << 10
	MaxKeyLen      = 255
)

// ChargeRequest is the body of POST /v1/charges.
type ChargeRequest struct {
	OrderID     string `json:"orderId"`
	AmountCents int64  `json:"amountCents"`
	Currency    string `json:"currency"`
	// One of: PaymentRef, the platform/vault reference of the order's token
	// (what the saga sends), or Token itself (a direct caller, or a saga of
	// an order accepted before the vault).
	Token      string `json:"token,omitempty"`
	PaymentRef string `json:"paymentRef,omitempty"`
}

// ChargeResponse is the 201 body of POST /v1/charges.
type ChargeResponse struct {
	ChargeID    string    `json:"chargeId"`
	OrderID     string    `json:"orderId"`
	Status      string    `json:"status"` // captured
	AmountCents int64     `json:"amountCents"`
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Declined is the 402 body of POST /v1/charges.
type Declined struct {
	Error    string `json:"error"` // card_declined | insufficient_funds
	ChargeID string `json:"chargeId"`
	OrderID  string `json:"orderId"`
}

// Refund is the body of POST /v1/charges/{id}/refunds (201 the first time,
// 200 with the same refund afterwards).
type Refund struct {
	RefundID    string    `json:"refundId"`
	ChargeID    string    `json:"chargeId"`
	OrderID     string    `json:"orderId"`
	AmountCents int64     `json:"amountCents"`
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Charge is one entry of GET /v1/charges?orderId=.
type Charge struct {
	ChargeID       string    `json:"chargeId"`
	OrderID        string    `json:"orderId"`
	IdempotencyKey string    `json:"idempotencyKey"`
	Status         string    `json:"status"`
	DeclineCode    string    `json:"declineCode,omitempty"`
	AmountCents    int64     `json:"amountCents"`
	Currency       string    `json:"currency"`
	CreatedAt      time.Time `json:"createdAt"`
	Refunds        []Refund  `json:"refunds"`
}

// ChargeList is the body of GET /v1/charges?orderId=.
type ChargeList struct {
	OrderID string   `json:"orderId"`
	Charges []Charge `json:"charges"`
}

// OrderRefunds is the 200 body of POST /v1/refunds?orderId=: every refund of
// the order after the call (those made now and earlier); empty when the
// order was never charged.
type OrderRefunds struct {
	OrderID string   `json:"orderId"`
	Refunds []Refund `json:"refunds"`
}
