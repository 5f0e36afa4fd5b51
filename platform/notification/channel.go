package notification

import (
	"context"
	"fmt"
	"strings"
)

// Channel is a way of reaching a user.
type Channel string

// The channels, in the order a notification is sent on them.
const (
	Email Channel = "email"
	Push  Channel = "push"
	SMS   Channel = "sms"
)

// Channels lists every channel.
var Channels = []Channel{Email, Push, SMS}

// Message is one notification on one channel.
type Message struct {
	// IdempotencyKey is {orderId}:{template}:{channel}: a provider that has
	// already accepted it must not deliver it again.
	IdempotencyKey string
	OrderID        string
	Template       string
	Channel        Channel
	To             string
	Subject        string
	Body           string
}

// Sender sends a message on one channel (a provider's API).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Contact is where a user is reached; an empty address means the channel is skipped.
type Contact struct {
	UserID    string `json:"userId"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	PushToken string `json:"pushToken,omitempty"`
}

// Address returns the contact's address on channel, "" when it has none.
func (c Contact) Address(ch Channel) string {
	switch ch {
	case Email:
		return c.Email
	case Push:
		return c.PushToken
	case SMS:
		return c.Phone
	}
	return ""
}

// IdempotencyKey is the key of (order, template, channel).
func IdempotencyKey(orderID, template string, ch Channel) string {
	return orderID + ":" + template + ":" + string(ch)
}

// render writes the message of a template for a channel.
func render(p Payload, ch Channel, to string) Message {
	subject := map[string]string{
		TemplateOrderShipped:      "Your order has shipped",
		TemplateDeliveryConfirmed: "Your order was delivered",
		TemplateOrderFailed:       "We could not complete your order",
		TemplateOrderCancelled:    "Your order was cancelled",
	}[p.Template]
	var b strings.Builder
	fmt.Fprintf(&b, "%s (order %s).", subject, p.OrderID)
	if v := p.Data["trackingNumber"]; v != "" {
		fmt.Fprintf(&b, " Tracking number: %s.", v)
	}
	if v := p.Data["reason"]; v != "" {
		fmt.Fprintf(&b, " Reason: %s.", v)
	}
	return Message{
		IdempotencyKey: IdempotencyKey(p.OrderID, p.Template, ch),
		OrderID:        p.OrderID,
		Template:       p.Template,
		Channel:        ch,
		To:             to,
		Subject:        subject,
		Body:           b.String(),
	}
}
