package order

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

// ProjectionGroup is the consumer group that projects saga status events.
const ProjectionGroup = "order-projection"

// Projector consumes order.status_changed events from the order-status topic and
// applies them to the store, committing offsets only after they are applied.
type Projector struct {
	Client  *kgo.Client // consumer of event.TopicOrderStatus in ProjectionGroup, auto-commit off
	Store   *Store
	Log     *slog.Logger
	Metrics *kafka.Metrics
}

// ProjectorOpts are the consumer options of the projector.
func ProjectorOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(ProjectionGroup),
		kgo.ConsumeTopics(event.TopicOrderStatus),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// A fetch returns as soon as a record arrives (FetchMinBytes 1), so the
		// longest wait only sets how often an idle member asks the broker:
		// every 100 ms was 10 empty fetches a second per member for nothing.
		kgo.FetchMaxWait(500 * time.Millisecond),
		// A restarted or killed Orders process must not leave partitions
		// unprojected for the 45 s default session.
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(time.Second),
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
		// Partitions are independent (an order's events share one, keyed by
		// user): each is applied in order, in one transaction, concurrently
		// with the others.
		var (
			mu     sync.Mutex
			failed error
			wg     sync.WaitGroup
		)
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.applyPartition(ctx, ftp); err != nil {
					mu.Lock()
					failed = errors.Join(failed, err)
					mu.Unlock()
				}
			}()
		})
		wg.Wait()
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

// applyPartition projects the status events of one partition's fetch in one
// transaction; on error nothing of it is applied.
func (p *Projector) applyPartition(ctx context.Context, ftp kgo.FetchTopicPartition) error {
	var es []event.OrderStatusChanged
	for _, rec := range ftp.Records {
		if e, ok := p.statusEvent(rec); ok {
			es = append(es, e)
		}
	}
	if _, err := p.Store.ApplyStatuses(ctx, es); err != nil {
		return fmt.Errorf("partition %d: apply %d status events: %w", ftp.Partition, len(es), err)
	}
	if p.Metrics != nil {
		now := time.Now()
		for _, rec := range ftp.Records {
			p.Metrics.ObserveConsumed(ProjectionGroup, rec, ftp.HighWatermark, now)
		}
	}
	return nil
}

// statusEvent decodes a record that is a status event the projection can
// apply; anything else on the topic is skipped.
func (p *Projector) statusEvent(rec *kgo.Record) (event.OrderStatusChanged, bool) {
	if kafka.Header(rec, event.HeaderEventType) != event.TypeOrderStatusChanged {
		return event.OrderStatusChanged{}, false
	}
	env, err := event.Decode(rec.Value)
	if err != nil {
		p.Log.Warn("skipping undecodable status event", "offset", rec.Offset, "partition", rec.Partition, "err", err)
		return event.OrderStatusChanged{}, false
	}
	e, err := event.DecodeData[event.OrderStatusChanged](env)
	if err != nil {
		p.Log.Warn("skipping invalid status event", "event_id", env.ID, "err", err)
		return event.OrderStatusChanged{}, false
	}
	if _, err := uuid.Parse(e.OrderID); err != nil {
		// Order ids are UUIDs: no order can have this one, so no retry will
		// ever apply it (an order that does not exist is skipped the same way).
		p.Log.Warn("skipping status event of a malformed order id", "event_id", env.ID, "order_id", e.OrderID)
		return event.OrderStatusChanged{}, false
	}
	return e, true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
