package analytics

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
)

// KafkaTarget produces matched events, value, key and headers unchanged, to
// a topic. The client must be an idempotent producer (franz-go's default).
type KafkaTarget struct {
	Client *kgo.Client
	Topic  string
}

var _ Target = (*KafkaTarget)(nil)

// HeaderRule names the rule that routed a record or a request.
const HeaderRule = "analytics-rule"

// Deliver implements Target.
func (t *KafkaTarget) Deliver(ctx context.Context, ds []Delivery) error {
	recs := make([]*kgo.Record, len(ds))
	for i, d := range ds {
		hs := make([]kgo.RecordHeader, 0, len(d.Record.Headers)+1)
		hs = append(hs, d.Record.Headers...)
		hs = append(hs, kgo.RecordHeader{Key: HeaderRule, Value: []byte(d.Rule)})
		recs[i] = &kgo.Record{Topic: t.Topic, Key: d.Record.Key, Value: d.Record.Value, Headers: hs}
	}
	of := make(map[*kgo.Record]int, len(recs)) // ProduceSync answers in completion order
	for i, r := range recs {
		of[r] = i
	}
	var rej []Rejection
	for _, res := range t.Client.ProduceSync(ctx, recs...) {
		i := of[res.Record]
		switch {
		case res.Err == nil:
		case deadletter.Refused(res.Err):
			// Refused for what it is (too large with the rule header, ...):
			// no retry can publish it; the router dead-letters it.
			rej = append(rej, Rejection{Delivery: ds[i], Cause: CauseRejected, Reason: fmt.Sprintf("produce to %s: %v", t.Topic, res.Err)})
		default:
			return fmt.Errorf("produce to %s: %w", t.Topic, res.Err) // the broker's state: retried
		}
	}
	if len(rej) > 0 {
		return &RejectedError{Rejected: rej}
	}
	return nil
}
