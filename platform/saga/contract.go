// Package saga runs each order as a durable Temporal workflow: reserve
// inventory -> charge payment -> create shipment -> notify -> wait for
// delivery -> notify, compensating completed steps in reverse on failure.
//
// This file is the contract between the workflow (worker), the orchestrator
// that starts it, the Orders API that signals and queries it, and the chaos
// verifier that reads its history. It depends on nothing but the event
// package and the Temporal SDK's client types.
package saga

import (
	"time"

	"github.com/stampede-dev/stampede/platform/event"
)

// TaskQueue is where order workflows and their activities run.
const TaskQueue = "order-processing"

// WorkflowType is the registered name of the order workflow.
const WorkflowType = "OrderWorkflow"

// WorkflowID is the id of the workflow of one order: starting it twice is a
// no-op (WorkflowIDReusePolicy reject duplicate, conflict policy fail).
func WorkflowID(orderID string) string { return "order-" + orderID }

// Signals and the query.
const (
	SignalCancel    = "cancel"
	SignalDelivered = "delivered"
	QueryStatus     = "status"
)

// Search attributes the workflow is started with (registered by stampede-temporal).
const (
	SearchAttrOrderID = "OrderId"
	SearchAttrUserID  = "UserId"
)

// Input starts a workflow: the order as it was created, plus the correlation
// id that travels with it through every hop.
type Input struct {
	Order         event.OrderCreated `json:"order"`
	CorrelationID string             `json:"correlationId"`
	// DeliveryWait bounds the wait for the delivered signal; zero means the
	// worker's default (DefaultDeliveryWait unless configured).
	DeliveryWait time.Duration `json:"deliveryWait,omitempty"`
	// OutageBudget is how long a step retries infrastructure failures before
	// the order is compensated; zero means the worker's default
	// (DefaultOutageBudget unless configured).
	OutageBudget time.Duration `json:"outageBudget,omitempty"`
	// BudgetEnd is set by the workflow on the copy it hands a step's
	// activity: when that step's outage budget ends. The worker's Pacer never
	// delays a retry past it. Never part of a workflow's start input.
	BudgetEnd time.Time `json:"budgetEnd,omitzero"`
	// Announce is set by the workflow on the copy it hands a step's
	// activity: the statuses the activity publishes, on its first attempt,
	// before it calls the service (one activity where a publish and a step
	// always ran together). Never part of a workflow's start input.
	Announce []StatusUpdate `json:"announce,omitempty"`
}

// Defaults of the durations an Input may leave zero.
const (
	DefaultDeliveryWait = 14 * 24 * time.Hour
	DefaultOutageBudget = 10 * time.Minute
)

// CancelRequest is the payload of the cancel signal.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// DeliveredSignal is the payload of the delivered signal.
type DeliveredSignal struct {
	ShipmentID  string    `json:"shipmentId"`
	DeliveredAt time.Time `json:"deliveredAt"`
}

// Step names, used in Status.Steps, compensations and metrics labels.
const (
	StepReserve  = "reserve_inventory"
	StepCharge   = "charge_payment"
	StepShip     = "create_shipment"
	StepNotify   = "notify"
	StepDelivery = "await_delivery"

	CompRelease = "release_reservation"
	CompRefund  = "refund_charge"
	CompCancel  = "cancel_shipment"
)

// Status is what the status query answers. Status values are the order
// statuses of platform/order (processing, reserving_inventory, ...).
type Status struct {
	OrderID        string              `json:"orderId"`
	Status         string              `json:"status"`
	Steps          []StepTime          `json:"steps"`
	Compensations  []CompensationState `json:"compensations"`
	FailureReason  string              `json:"failureReason,omitempty"`
	CancelRefused  string              `json:"cancelRefused,omitempty"` // why the last cancel was refused
	ReservationID  string              `json:"reservationId,omitempty"`
	ChargeID       string              `json:"chargeId,omitempty"`
	ShipmentID     string              `json:"shipmentId,omitempty"`
	TrackingNumber string              `json:"trackingNumber,omitempty"`
	FailedAt       time.Time           `json:"failedAt,omitzero"`      // the failure decision
	CompensatedAt  time.Time           `json:"compensatedAt,omitzero"` // the last compensation completed
}

// StepTime records when a step started and finished.
type StepTime struct {
	Step       string    `json:"step"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// CompensationState is one compensation's progress; Stuck is set once it has
// been failing for more than StuckAfter.
type CompensationState struct {
	Name        string    `json:"name"`
	StartedAt   time.Time `json:"startedAt"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"lastError,omitempty"`
	Stuck       bool      `json:"stuck"`
}

// StuckAfter is how long a compensation may fail before it is reported stuck.
const StuckAfter = 30 * time.Second

// Result is what a finished workflow returns: its terminal status
// (delivered, failed, cancelled) and the final Status.
type Result = Status
