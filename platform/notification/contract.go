// Package notification delivers order notifications in the background: the
// saga enqueues one task per (order, template) on Redis with asynq, and the
// Notifications service sends it on every channel the user has a contact for,
// retrying exactly the channels that failed and never sending one twice.
//
// This file is the contract between the saga's notify activity (producer)
// and the Notifications service (consumer). It must stay free of any
// dependency on either side.
package notification

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stampede-dev/stampede/platform/event"
)

// Queue is the asynq queue notifications go through.
const Queue = "notifications"

// Templates: each is its own asynq task type.
const (
	TemplateOrderShipped      = "order-shipped"
	TemplateDeliveryConfirmed = "delivery-confirmed"
	TemplateOrderFailed       = "order-failed"
	TemplateOrderCancelled    = "order-cancelled"
)

// Templates lists every template.
var Templates = []string{TemplateOrderShipped, TemplateDeliveryConfirmed, TemplateOrderFailed, TemplateOrderCancelled}

// MaxAttempts is the total number of attempts of a task (asynq MaxRetry is
// one less). The sandbox providers refuse 5% of sends at random: with 3
// attempts a channel was lost once in 8,000 (1.25e-4, about one order in a
// chaos run, which the audit counts as not notified); with 6, once in 64
// million, within 45 s of retries (5 s, then 10 s each).
const MaxAttempts = 6

// Retention keeps completed tasks inspectable for a day.
const Retention = 24 * time.Hour

// Payload is the body of a notification task.
type Payload struct {
	OrderID       string            `json:"orderId"`
	UserID        string            `json:"userId"`
	Template      string            `json:"template"`
	CorrelationID string            `json:"correlationId"`
	Data          map[string]string `json:"data,omitempty"` // e.g. trackingNumber, reason
	RequestedAt   time.Time         `json:"requestedAt"`
}

// TaskID is the asynq task id of a notification: enqueuing the same
// (order, template) twice is a no-op.
func TaskID(orderID, template string) string { return orderID + ":" + template }

// Bounds on a payload's Data: a few named values (trackingNumber, reason)
// that end up in a message and in the notifications table.
const (
	MaxDataEntries = 16
	MaxDataKey     = 64
	MaxDataValue   = 1000
)

// Validate checks the payload before it is enqueued or handled; an error
// names the field. Everything in it is stored (PostgreSQL refuses NUL and
// bytes that are not UTF-8) and used as an asynq task id, so it is bounded.
func (p Payload) Validate() error {
	switch {
	case p.OrderID == "":
		return fmt.Errorf("notification: orderId missing")
	case !event.ValidID(p.OrderID):
		return fmt.Errorf("notification: orderId: want 1-128 letters, digits and ._:-")
	case p.UserID == "":
		return fmt.Errorf("notification: userId missing")
	case !event.ValidText(p.UserID, event.MaxUserID):
		return fmt.Errorf("notification: userId: want at most %d characters of text", event.MaxUserID)
	case p.CorrelationID != "" && !event.ValidCorrelationID(p.CorrelationID):
		return fmt.Errorf("notification: correlationId: want 1-%d letters, digits and . _ : / @ + = -", event.MaxCorrelationID)
	case len(p.Data) > MaxDataEntries:
		return fmt.Errorf("notification: data: at most %d entries, got %d", MaxDataEntries, len(p.Data))
	}
	for k, v := range p.Data {
		if !event.ValidText(k, MaxDataKey) || k == "" {
			return fmt.Errorf("notification: data: key %.40q: want 1-%d characters of text", k, MaxDataKey)
		}
		if !event.ValidText(v, MaxDataValue) {
			return fmt.Errorf("notification: data.%s: want at most %d characters of text without control characters", k, MaxDataValue)
		}
	}
	for _, t := range Templates {
		if p.Template == t {
			return nil
		}
	}
	return fmt.Errorf("notification: unknown template %q", p.Template)
}

// cleanText is v as a notification can carry it: valid UTF-8, control
// characters as spaces, at most max characters (cut with an ellipsis).
func cleanText(v string, max int) string {
	if event.ValidText(v, max) {
		return v
	}
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(v, "\uFFFD") {
		if n == max-1 {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// NewTask returns the asynq task for p with its id, queue, attempts and
// retention. Data values are message text: each is cut to MaxDataValue
// characters of printable text first, so a failure reason quoting hostile
// input is still sent (and stored), never refused on every retry.
func NewTask(p Payload) (*asynq.Task, error) {
	if len(p.Data) > 0 {
		data := make(map[string]string, len(p.Data))
		for k, v := range p.Data {
			data[k] = cleanText(v, MaxDataValue)
		}
		p.Data = data
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("notification: encode payload: %w", err)
	}
	return asynq.NewTask(p.Template, b,
		asynq.TaskID(TaskID(p.OrderID, p.Template)),
		asynq.Queue(Queue),
		asynq.MaxRetry(MaxAttempts-1),
		asynq.Retention(Retention),
	), nil
}

// DecodePayload decodes and validates a task payload.
func DecodePayload(b []byte) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("notification: decode payload: %w", err)
	}
	return p, p.Validate()
}

// Enqueue enqueues the notification of p. A task with the same id still in
// the queue (pending, retrying, dead, or completed within Retention) is the
// same notification: enqueuing it again is a no-op, not an error.
func Enqueue(ctx context.Context, c *asynq.Client, p Payload) error {
	t, err := NewTask(p)
	if err != nil {
		return err
	}
	if _, err := c.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("notification: enqueue %s: %w", TaskID(p.OrderID, p.Template), err)
	}
	return nil
}
