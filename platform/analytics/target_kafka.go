package analytics

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
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
	if err := t.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", t.Topic, err)
	}
	return nil
}
