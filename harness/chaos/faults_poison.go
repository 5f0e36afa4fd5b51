package chaos

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// dlqTopic is where the orchestrators dead-letter what they cannot decode.
const dlqTopic = "orders.dlq"

// poison produces one undecodable record, labelled order.created, into the
// orders topic; after the load it must be found in orders.dlq, and the
// group must not have stopped on it.
type poison struct {
	r    *faultRun
	key  string               // the poison record's key, once produced
	from map[int32]kgo.Offset // the dead-letter topic's end before it
	wait time.Duration        // how long Audit looks for it
}

func newPoison(r *faultRun) Fault { return &poison{r: r, wait: 15 * time.Second} }

func (f *poison) Check(context.Context) error { return nil }

func (f *poison) Inject(ctx context.Context) error {
	r, e := f.r, f.r.e
	from, err := EndOffsets(ctx, e.cfg.Brokers, dlqTopic)
	if err != nil {
		return err
	}
	r.started()
	key, err := Poison(ctx, e.cfg.Brokers, e.cfg.Topic, e.cfg.Run)
	if err != nil {
		r.fail(err)
		return nil
	}
	f.key, f.from = key, from
	r.detail("poison record key " + key + " produced to " + e.cfg.Topic)
	return nil
}

func (f *poison) Heal(context.Context) error { return nil }

// Audit confirms the poison record reached the dead-letter topic.
func (f *poison) Audit(ctx context.Context) {
	if f.key == "" {
		return
	}
	r, e := f.r, f.r.e
	found, err := FindKey(ctx, e.cfg.Brokers, dlqTopic, f.from, f.key, f.wait)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err != nil:
		r.rec.Error = "reading " + dlqTopic + ": " + err.Error()
	case !found:
		r.rec.Error = "the poison record never reached " + dlqTopic
	default:
		r.rec.Detail += "; found in " + dlqTopic
	}
}
