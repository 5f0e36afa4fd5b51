package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/telemetry"
)

// ProjectionGroup is the consumer group that projects saga status events.
const ProjectionGroup = "order-projection"

// Projector consumes order.status_changed events from the orders topic and
// applies them to the store, committing offsets only after they are applied.
type Projector struct {
	Client  *kgo.Client // consumer of event.TopicOrders in ProjectionGroup, auto-commit off
	Store   *Store
	Log     *slog.Logger
	Metrics *kafka.Metrics
}

// ProjectorOpts are the consumer options of the projector.
func ProjectorOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(ProjectionGroup),
		kgo.ConsumeTopics(event.TopicOrders),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
}

// Run consumes until ctx is done.
func (p *Projector) Run(ctx context.Context) error {
	for {
		fs := p.Client.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				p.Log.Warn("fetch error", "topic", topic, "partition", part, "err", err)
			}
		})
		var failed error
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			for _, rec := range ftp.Records {
				if failed != nil {
					return
				}
				if err := p.apply(ctx, rec); err != nil {
					failed = err
					return
				}
				if p.Metrics != nil {
					p.Metrics.ObserveConsumed(ProjectionGroup, rec, ftp.HighWatermark, time.Now())
				}
			}
		})
		if failed != nil {
			// Nothing of this poll is committed: rewind to the last commit and
			// try again, so no status event is skipped.
			p.Log.Warn("projection failed; retrying from the last commit", "err", failed)
			p.Client.AllowRebalance()
			p.rewind(ctx)
			sleep(ctx, time.Second)
			continue
		}
		if err := p.Client.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			p.Log.Warn("commit offsets", "err", err)
		}
		p.Client.AllowRebalance()
	}
}

// rewind moves the consumer back to the committed offsets of its partitions.
func (p *Projector) rewind(ctx context.Context) {
	committed := p.Client.CommittedOffsets()
	p.Client.SetOffsets(committed)
}

func (p *Projector) apply(ctx context.Context, rec *kgo.Record) error {
	if kafka.Header(rec, event.HeaderEventType) != event.TypeOrderStatusChanged {
		return nil
	}
	env, err := event.Decode(rec.Value)
	if err != nil {
		p.Log.Warn("skipping undecodable status event", "offset", rec.Offset, "partition", rec.Partition, "err", err)
		return nil
	}
	e, err := event.DecodeData[event.OrderStatusChanged](env)
	if err != nil {
		p.Log.Warn("skipping invalid status event", "event_id", env.ID, "err", err)
		return nil
	}
	applied, err := p.Store.ApplyStatus(ctx, e)
	if err != nil {
		return fmt.Errorf("apply status %s of %s: %w", e.Status, e.OrderID, err)
	}
	if applied {
		p.Log.DebugContext(telemetry.WithCorrelationID(ctx, env.CorrelationID), "status projected", "order_id", e.OrderID, "status", e.Status, "seq", e.Seq)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
