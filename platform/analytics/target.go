package analytics

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
)

// Delivery is one matched event on its way to one target.
type Delivery struct {
	Rule   string
	Record *kgo.Record // the record as consumed: value, key, headers
	Env    event.Envelope
}

// Target receives matched events. Deliver returns nil only when every
// delivery is acknowledged (durably: the broker, the webhook's 2xx, the
// fsync, PutEvents without failed entries). A *RejectedError says which
// deliveries the target refused for good; everything else is retried.
// Targets may see an event twice (at-least-once) and dedupe on Env.ID.
type Target interface {
	Deliver(ctx context.Context, ds []Delivery) error
}

// Closer is implemented by targets holding resources.
type Closer interface {
	Close() error
}

// Rejection is a delivery a target gave up on: refused for a reason
// retrying cannot fix, or still failing after the target's attempts or
// time. The router dead-letters it with the reason.
type Rejection struct {
	Delivery Delivery
	Cause    string // CauseRejected (the default), CauseExhausted, CauseTimeout
	Reason   string
}

// RejectedError reports deliveries refused for good; the router sends them
// to the dead-letter topic and counts the others as delivered.
type RejectedError struct {
	Rejected []Rejection
}

func (e *RejectedError) Error() string {
	reasons := make([]string, 0, 3)
	for i, r := range e.Rejected {
		if i == 3 {
			reasons = append(reasons, "...")
			break
		}
		reasons = append(reasons, r.Reason)
	}
	return fmt.Sprintf("analytics: %d deliveries rejected: %s", len(e.Rejected), strings.Join(reasons, "; "))
}

func rejected(err error) (*RejectedError, bool) {
	var re *RejectedError
	ok := errors.As(err, &re)
	return re, ok
}
