package event

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Event types. The status event is what the saga emits on every transition so
// the Orders service can project it; the rest are the services' domain events.
const (
	TypeOrderCreated       = "order.created"
	TypeOrderStatusChanged = "order.status_changed"
	TypeInventoryReserved  = "inventory.reserved"
	TypeInventoryReleased  = "inventory.released"
	TypePaymentCompleted   = "payment.completed"
	TypePaymentRefunded    = "payment.refunded"
	TypeShipmentCreated    = "shipment.created"
	TypeShipmentCancelled  = "shipment.cancelled"
	TypeShipmentDelivered  = "shipment.delivered"
	TypeAnalyticsOrder     = "analytics.order_created"
	TypeAnalyticsOutcome   = "analytics.order_outcome"
)

// Topics, as created by the stack.
const (
	TopicOrders = "orders"
	// TopicOrderStatus carries the saga's order.status_changed events, apart
	// from the order.created events on TopicOrders: the orchestrators, whose
	// lag is order intake's, then read only what they act on (one record per
	// order instead of eight), and the Orders projection only statuses.
	TopicOrderStatus   = "order-status"
	TopicPayments      = "payments"
	TopicInventory     = "inventory"
	TopicShipping      = "shipping"
	TopicNotifications = "notifications"
	TopicAnalytics     = "analytics"
	TopicOrdersDLQ     = "orders.dlq"
	TopicAnalyticsDLQ  = "analytics.dlq"
)

func init() {
	register[OrderCreated]()
	register[OrderStatusChanged]()
	register[InventoryReserved]()
	register[InventoryReleased]()
	register[PaymentCompleted]()
	register[PaymentRefunded]()
	register[ShipmentCreated]()
	register[ShipmentCancelled]()
	register[ShipmentDelivered]()
	register[AnalyticsOrder]()
	register[AnalyticsOutcome]()
}

// LineItem is one line of an order.
type LineItem struct {
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"priceCents"`
}

// Address is a shipping address.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// Payment is how the customer pays: a method and the instrument. In
// order.created the instrument is Ref, a platform/vault reference that
// Payments resolves; the token itself never travels in an event. Token is
// the customer's token as the Orders API takes it, and as events written
// before the vault still carry it (their sagas charge with it).
type Payment struct {
	Method string `json:"method"`
	Token  string `json:"token,omitempty"`
	Ref    string `json:"ref,omitempty"`
}

// OrderCreated is published once an order and its outbox rows are committed.
type OrderCreated struct {
	OrderID         string     `json:"orderId"`
	UserID          string     `json:"userId"`
	Currency        string     `json:"currency"`
	Items           []LineItem `json:"items"`
	TotalCents      int64      `json:"totalCents"`
	ShippingAddress Address    `json:"shippingAddress"`
	Payment         Payment    `json:"payment"`
	CreatedAt       time.Time  `json:"createdAt"`
}

func (OrderCreated) EventType() string { return TypeOrderCreated }

func (e OrderCreated) Validate() error {
	switch {
	case e.OrderID == "":
		return fieldErr("data.orderId", "missing")
	case !ValidID(e.OrderID):
		return fieldErr("data.orderId", idRule)
	case e.UserID == "":
		return fieldErr("data.userId", "missing")
	case !ValidText(e.UserID, MaxUserID):
		return fieldErr("data.userId", textRule(MaxUserID))
	case len(e.Currency) != 3:
		return fieldErr("data.currency", "want an ISO 4217 code")
	case len(e.Items) == 0:
		return fieldErr("data.items", "empty")
	case len(e.Items) > MaxLines:
		return fieldErr("data.items", fmt.Sprintf("more than %d lines", MaxLines))
	case e.Payment.Ref == "" && e.Payment.Token == "":
		return fieldErr("data.payment.ref", "missing")
	case !ValidText(e.Payment.Ref, MaxToken):
		return fieldErr("data.payment.ref", textRule(MaxToken))
	case !ValidText(e.Payment.Token, MaxToken):
		return fieldErr("data.payment.token", textRule(MaxToken))
	case !ValidText(e.Payment.Method, MaxToken):
		return fieldErr("data.payment.method", textRule(MaxToken))
	case e.ShippingAddress.Country == "":
		return fieldErr("data.shippingAddress.country", "missing")
	}
	a := e.ShippingAddress
	for _, f := range []struct{ name, v string }{{"name", a.Name}, {"line1", a.Line1}, {"line2", a.Line2},
		{"city", a.City}, {"region", a.Region}, {"postalCode", a.PostalCode}, {"country", a.Country}} {
		if !ValidText(f.v, MaxAddressField) {
			return fieldErr("data.shippingAddress."+f.name, textRule(MaxAddressField))
		}
	}
	var total int64
	for i, it := range e.Items {
		switch {
		case it.SKU == "":
			return fieldErr(fmt.Sprintf("data.items[%d].sku", i), "missing")
		case !ValidText(it.SKU, MaxSKU):
			return fieldErr(fmt.Sprintf("data.items[%d].sku", i), textRule(MaxSKU))
		case it.Qty < 1:
			return fieldErr(fmt.Sprintf("data.items[%d].qty", i), "below 1")
		case it.Qty > MaxLineQty:
			return fieldErr(fmt.Sprintf("data.items[%d].qty", i), fmt.Sprintf("above %d", MaxLineQty))
		case it.PriceCents < 0:
			return fieldErr(fmt.Sprintf("data.items[%d].priceCents", i), "negative")
		case it.PriceCents > MaxLinePriceCents:
			return fieldErr(fmt.Sprintf("data.items[%d].priceCents", i), fmt.Sprintf("above %d", int64(MaxLinePriceCents)))
		}
		total += int64(it.Qty) * it.PriceCents // bounded above: no overflow
	}
	if total != e.TotalCents {
		return fieldErr("data.totalCents", fmt.Sprintf("%d is not the sum of the lines (%d)", e.TotalCents, total))
	}
	return nil
}

// OrderStatusChanged is emitted by the saga on every status transition; Seq
// grows by one per transition of one order, so a projection can ignore stale ones.
type OrderStatusChanged struct {
	OrderID string    `json:"orderId"`
	UserID  string    `json:"userId"`
	Status  string    `json:"status"`
	Seq     int       `json:"seq"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
}

func (OrderStatusChanged) EventType() string { return TypeOrderStatusChanged }

func (e OrderStatusChanged) Validate() error {
	switch {
	case e.OrderID == "":
		return fieldErr("data.orderId", "missing")
	case !ValidID(e.OrderID):
		return fieldErr("data.orderId", idRule)
	case e.Status == "":
		return fieldErr("data.status", "missing")
	case e.Seq < 1:
		return fieldErr("data.seq", "below 1")
	case e.At.IsZero():
		return fieldErr("data.at", "missing")
	}
	return nil
}

// ReservedItem is a reserved line, with the warehouse it is held in.
type ReservedItem struct {
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	WarehouseID string `json:"warehouseId"`
}

// InventoryReserved is published when stock is held for an order.
type InventoryReserved struct {
	OrderID       string         `json:"orderId"`
	ReservationID string         `json:"reservationId"`
	Items         []ReservedItem `json:"items"`
}

func (InventoryReserved) EventType() string { return TypeInventoryReserved }

func (e InventoryReserved) Validate() error {
	switch {
	case e.OrderID == "":
		return fieldErr("data.orderId", "missing")
	case !ValidID(e.OrderID):
		return fieldErr("data.orderId", idRule)
	case e.ReservationID == "":
		return fieldErr("data.reservationId", "missing")
	case len(e.Items) == 0:
		return fieldErr("data.items", "empty")
	}
	return nil
}

// InventoryReleased is published when a reservation is given back.
type InventoryReleased struct {
	OrderID       string `json:"orderId"`
	ReservationID string `json:"reservationId"`
}

func (InventoryReleased) EventType() string { return TypeInventoryReleased }

func (e InventoryReleased) Validate() error {
	if e.ReservationID == "" {
		return fieldErr("data.reservationId", "missing")
	}
	return nil
}

// PaymentCompleted is published when a charge is captured.
type PaymentCompleted struct {
	OrderID     string `json:"orderId"`
	PaymentID   string `json:"paymentId"`
	AmountCents int64  `json:"amountCents"`
	Currency    string `json:"currency"`
	Method      string `json:"method"`
}

func (PaymentCompleted) EventType() string { return TypePaymentCompleted }

func (e PaymentCompleted) Validate() error {
	switch {
	case e.OrderID == "":
		return fieldErr("data.orderId", "missing")
	case !ValidID(e.OrderID):
		return fieldErr("data.orderId", idRule)
	case e.PaymentID == "":
		return fieldErr("data.paymentId", "missing")
	case e.AmountCents < 0:
		return fieldErr("data.amountCents", "negative")
	case len(e.Currency) != 3:
		return fieldErr("data.currency", "want an ISO 4217 code")
	}
	return nil
}

// PaymentRefunded is published when a charge is refunded in full.
type PaymentRefunded struct {
	OrderID     string `json:"orderId"`
	PaymentID   string `json:"paymentId"`
	RefundID    string `json:"refundId"`
	AmountCents int64  `json:"amountCents"`
	Currency    string `json:"currency"`
}

func (PaymentRefunded) EventType() string { return TypePaymentRefunded }

func (e PaymentRefunded) Validate() error {
	switch {
	case e.PaymentID == "":
		return fieldErr("data.paymentId", "missing")
	case e.RefundID == "":
		return fieldErr("data.refundId", "missing")
	}
	return nil
}

// ShipmentCreated is published when a shipment is booked.
type ShipmentCreated struct {
	OrderID        string `json:"orderId"`
	ShipmentID     string `json:"shipmentId"`
	TrackingNumber string `json:"trackingNumber"`
}

func (ShipmentCreated) EventType() string { return TypeShipmentCreated }

func (e ShipmentCreated) Validate() error {
	if e.ShipmentID == "" {
		return fieldErr("data.shipmentId", "missing")
	}
	return nil
}

// ShipmentCancelled is published when a shipment is cancelled.
type ShipmentCancelled struct {
	OrderID    string `json:"orderId"`
	ShipmentID string `json:"shipmentId"`
}

func (ShipmentCancelled) EventType() string { return TypeShipmentCancelled }

func (e ShipmentCancelled) Validate() error {
	if e.ShipmentID == "" {
		return fieldErr("data.shipmentId", "missing")
	}
	return nil
}

// ShipmentDelivered is published when delivery is confirmed.
type ShipmentDelivered struct {
	OrderID    string `json:"orderId"`
	ShipmentID string `json:"shipmentId"`
}

func (ShipmentDelivered) EventType() string { return TypeShipmentDelivered }

func (e ShipmentDelivered) Validate() error {
	if e.ShipmentID == "" {
		return fieldErr("data.shipmentId", "missing")
	}
	return nil
}

// AnalyticsOrder is the analytics view of a new order, published in the same
// Kafka transaction as order.created.
type AnalyticsOrder struct {
	OrderID    string `json:"orderId"`
	UserID     string `json:"userId"`
	TotalCents int64  `json:"totalCents"`
	Currency   string `json:"currency"`
	ItemCount  int    `json:"itemCount"`
	Country    string `json:"country"`
}

func (AnalyticsOrder) EventType() string { return TypeAnalyticsOrder }

func (e AnalyticsOrder) Validate() error {
	if !ValidID(e.OrderID) {
		return fieldErr("data.orderId", idRule)
	}
	return nil
}

// AnalyticsOutcome is the analytics view of how an order ended.
type AnalyticsOutcome struct {
	OrderID    string `json:"orderId"`
	UserID     string `json:"userId"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	TotalCents int64  `json:"totalCents"`
	Currency   string `json:"currency"`
}

func (AnalyticsOutcome) EventType() string { return TypeAnalyticsOutcome }

func (e AnalyticsOutcome) Validate() error {
	switch {
	case e.OrderID == "":
		return fieldErr("data.orderId", "missing")
	case !ValidID(e.OrderID):
		return fieldErr("data.orderId", idRule)
	case e.Status == "":
		return fieldErr("data.status", "missing")
	}
	return nil
}

// Bounds on what an order.created may carry, whoever produced it: what the
// services the saga calls accept (Inventory and Shipping take at most 100
// lines, Payments a 255-character token, Shipping 200-character address
// fields) and what Temporal takes as a search attribute (the user id). The
// Orders API accepts less (platform/order); these keep a record written to
// the topic by anything else from reaching the saga at all.
const (
	MaxUserID         = 128
	MaxLines          = 100
	MaxSKU            = 64
	MaxLineQty        = 1_000_000
	MaxLinePriceCents = 10_000_000_000 // with MaxLineQty and MaxLines, a total never overflows int64
	MaxToken          = 255
	MaxAddressField   = 200
)

// ValidText reports whether s can be stored, logged and forwarded as text:
// valid UTF-8 without control characters, at most max characters.
func ValidText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

func textRule(max int) string {
	return fmt.Sprintf("want at most %d characters of UTF-8 text without control characters", max)
}

// MaxCorrelationID is the longest correlation id an envelope (or a Kafka
// header, or an HTTP request) may carry.
const MaxCorrelationID = 128

// ValidCorrelationID reports whether s may serve as a correlation id: 1 to
// 128 characters, each a letter, a digit or one of . _ : / @ + = -. The id
// travels with an order everywhere: PostgreSQL rows, Kafka headers, HTTP
// headers, logs, metrics exemplars, Temporal memos.
func ValidCorrelationID(s string) bool {
	if len(s) == 0 || len(s) > MaxCorrelationID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == ':' || c == '/' || c == '@' || c == '+' || c == '=' || c == '-':
		default:
			return false
		}
	}
	return true
}

// idRule is what ValidID accepts, as a field error says it.
const idRule = "want 1-128 letters, digits and ._:-"

// ValidID reports whether s can name an order everywhere it goes: Temporal's
// workflow id, PostgreSQL text, Kafka keys and headers, URLs. Orders makes
// UUIDs; anything a hostile producer writes outside this set is refused at
// decode and dead-lettered, never handed to Temporal to refuse (or to fail
// to encode) on every retry.
func ValidID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
