package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// PutEventsAPI is the one EventBridge call the target needs.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var _ PutEventsAPI = (*eventbridge.Client)(nil)

// EventBridgeTarget sends matched events to an EventBridge bus with
// PutEvents, 10 entries a call (the API's limit). An entry: Source
// "stampede.<envelope source>", DetailType the event type, Detail the whole
// envelope (so the event id survives for dedupe), Time the event time.
// Entries PutEvents reports as failed are retried, Attempts times in total.
type EventBridgeTarget struct {
	API      PutEventsAPI
	Bus      string
	Attempts int // default 3
}

var _ Target = (*EventBridgeTarget)(nil)

// NewEventBridgeClient returns a client for region, calling endpoint when set
// (a local stub, LocalStack) instead of AWS's.
func NewEventBridgeClient(cfg aws.Config, region, endpoint string) *eventbridge.Client {
	return eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		if region != "" {
			o.Region = region
		}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

const putEventsMax = 10

// Deliver implements Target.
func (t *EventBridgeTarget) Deliver(ctx context.Context, ds []Delivery) error {
	for start := 0; start < len(ds); start += putEventsMax {
		if err := t.put(ctx, ds[start:min(start+putEventsMax, len(ds))]); err != nil {
			return err
		}
	}
	return nil
}

func (t *EventBridgeTarget) put(ctx context.Context, ds []Delivery) error {
	bus := t.Bus
	if bus == "" {
		bus = "default"
	}
	entries := make([]types.PutEventsRequestEntry, len(ds))
	for i, d := range ds {
		at := d.Env.OccurredAt
		entries[i] = types.PutEventsRequestEntry{
			Source:       aws.String("stampede." + d.Env.Source),
			DetailType:   aws.String(d.Env.Type),
			Detail:       aws.String(string(d.Record.Value)),
			EventBusName: aws.String(bus),
			Time:         &at,
		}
	}
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	backoff := 100 * time.Millisecond
	for a := 1; ; a++ {
		out, err := t.API.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			return fmt.Errorf("eventbridge PutEvents: %w", err)
		}
		if out.FailedEntryCount == 0 {
			return nil
		}
		// Results come back in request order; keep only the failed entries.
		var again []types.PutEventsRequestEntry
		var reason string
		for i, r := range out.Entries {
			if r.ErrorCode != nil && i < len(entries) {
				again = append(again, entries[i])
				reason = aws.ToString(r.ErrorCode) + ": " + aws.ToString(r.ErrorMessage)
			}
		}
		if len(again) == 0 { // a count without per-entry errors: resend all
			again = entries
		}
		if a == attempts {
			return fmt.Errorf("eventbridge PutEvents: %d of %d entries failed after %d attempts (%s)", len(again), len(ds), attempts, reason)
		}
		entries = again
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}
