package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/failpoint"
	"github.com/stampede-dev/stampede/platform/kafka"
)

// ProjectionGroup is the consumer group that projects saga status events.
const ProjectionGroup = "order-projection"

// Projector consumes order.status_changed events from the order-status topic and
// applies them to the store, committing offsets only after they are applied.
type Projector struct {
	Client  *kgo.Client // consumer of event.TopicOrderStatus in ProjectionGroup, built with ProjectorOpts
	Store   *Store
	Log     *slog.Logger
	Metrics *kafka.Metrics
	DLQ     string // dead-letter topic, default event.TopicOrdersDLQ
	// Linger is how long the projector waits after a small poll before the
	// next, so status events arriving meanwhile are applied (and committed,
	// in PostgreSQL and Kafka) together. It bounds the delay it adds.
	Linger time.Duration
}

// ProjectionCommitInterval is how often the projector commits the offsets
// of what it applied. It committed after every poll: at 20 orders/s that was
// about 2 OffsetCommits per order, each a write to __consumer_offsets and
// ~8 ms the loop waited for. Applying is idempotent (an event's seq is
// checked against the row's), so what a crash leaves uncommitted is applied
// again harmlessly; the group's lag gate is 1 s.
const ProjectionCommitInterval = 100 * time.Millisecond

// ProjectorOpts are the consumer options of the projector: only offsets of
// applied polls are marked, and the marks are committed every
// ProjectionCommitInterval, on a rebalance and on close.
func ProjectorOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(ProjectionGroup),
		kgo.ConsumeTopics(event.TopicOrderStatus),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(ProjectionCommitInterval),
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
			// Leaving the group (Client.Close) waits for the rebalance this
			// poll blocks: without this, a stopped Orders hung until it was
			// killed, and its partitions stayed with a dead member for a
			// session (the view 5 s stale after every restart).
			p.Client.AllowRebalance()
			return nil
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				p.Log.Warn("fetch error", "topic", topic, "partition", part, "err", err)
			}
		})
		// One transaction for the whole poll: an order's events share a
		// partition (keyed by user) and stay in order within it. (One per
		// partition, or per event at low rates, was a PostgreSQL commit per
		// status: six per order.)
		failed := p.apply(ctx, fs)
		if failed != nil {
			// Nothing of this poll is committed: rewind to its first records
			// and try again, so no status event is skipped (also on the
			// first poll, when there is no commit to go back to).
			p.Log.Warn("projection failed; retrying the poll", "err", failed)
			p.rewind(fs)
			p.Client.AllowRebalance()
			sleep(ctx, time.Second)
			continue
		}
		// Applied (or dead-lettered): the background commit takes it.
		p.Client.MarkCommitRecords(fs.Records()...)
		p.Client.AllowRebalance()
		if p.Linger > 0 && fs.NumRecords() < lingerBelow {
			// A small poll: let the next one gather what arrives meanwhile.
			sleep(ctx, p.Linger)
		}
	}
}

// DefaultProjectionLinger is the projector's default Linger. At 20 ms, a
// 20 orders/s peak (six status events an order) was about 50 polls a
// second, each a fetch and a PostgreSQL transaction; at 50 ms it is about
// twenty. (At 100 ms, with commits every 200 ms, the group's lag reached
// 829 ms of its 1 s gate in a short chaos run; 50 and 100 ms give back
// about half of what they add.)
const DefaultProjectionLinger = 50 * time.Millisecond

// lingerBelow is the poll size from which the projector polls again at once.
const lingerBelow = 50

// rewind moves the consumer back to the first record of each partition of
// fs, which nothing has committed past.
func (p *Projector) rewind(fs kgo.Fetches) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
		if len(ftp.Records) == 0 {
			return
		}
		if offsets[ftp.Topic] == nil {
			offsets[ftp.Topic] = map[int32]kgo.EpochOffset{}
		}
		r := ftp.Records[0]
		offsets[ftp.Topic][ftp.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
	})
	p.Client.SetOffsets(offsets)
}

// apply projects the status events of a poll in one transaction; on error
// nothing of it is applied. When PostgreSQL refuses the data of the batch
// (not its own state), the events are applied one by one and those it
// refuses are dead-lettered, so one event cannot stop the rest.
func (p *Projector) apply(ctx context.Context, fs kgo.Fetches) error {
	var (
		es   []event.OrderStatusChanged
		recs []*kgo.Record
	)
	var err error
	fs.EachRecord(func(rec *kgo.Record) {
		if err != nil {
			return
		}
		e, derr := p.statusEvent(rec)
		switch {
		case derr != nil:
			err = p.deadLetter(ctx, rec, derr)
		case e.OrderID != "" && e.Status == StatusFailed && failpoint.Armed(FailProjectionDropsFailed):
			// The defect: a filter meant for something else drops the
			// terminal failure, so the order keeps showing compensating.
		case e.OrderID != "":
			es = append(es, e)
			recs = append(recs, rec)
		}
	})
	if err != nil {
		return err
	}
	if _, err := p.Store.ApplyStatuses(ctx, es); err != nil {
		if !refusedData(err) {
			return fmt.Errorf("apply %d status events: %w", len(es), err)
		}
		for i, e := range es {
			_, err := p.Store.ApplyStatuses(ctx, es[i:i+1])
			switch {
			case err == nil:
			case refusedData(err):
				if err := p.deadLetter(ctx, recs[i], err); err != nil {
					return err
				}
			default:
				return fmt.Errorf("partition %d: apply status event of %s: %w", recs[i].Partition, e.OrderID, err)
			}
		}
	}
	if p.Metrics != nil {
		now := time.Now()
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			for _, rec := range ftp.Records {
				p.Metrics.ObserveConsumed(ProjectionGroup, rec, ftp.HighWatermark, now)
			}
		})
	}
	return nil
}

// refusedData reports whether PostgreSQL refused a statement for the data it
// carries (SQLSTATE class 22, data exception: a NUL byte, a value too long or
// out of range; class 23, a constraint), which no retry can change.
func refusedData(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// statusEvent decodes a record of the topic. It returns the status event to
// apply; a zero event and no error for a record that is not for the
// projection (another type, or an order id no order can have); an error for a
// record that claims to be a status event and is not one.
func (p *Projector) statusEvent(rec *kgo.Record) (event.OrderStatusChanged, error) {
	if kafka.Header(rec, event.HeaderEventType) != event.TypeOrderStatusChanged {
		return event.OrderStatusChanged{}, nil
	}
	env, err := event.Decode(rec.Value)
	if err != nil {
		return event.OrderStatusChanged{}, err
	}
	e, err := event.DecodeData[event.OrderStatusChanged](env)
	if err != nil {
		return event.OrderStatusChanged{}, err
	}
	if _, err := uuid.Parse(e.OrderID); err != nil {
		// Order ids are UUIDs: no order can have this one, so no retry will
		// ever apply it (an order that does not exist is skipped the same way).
		p.Log.Warn("skipping status event of a malformed order id", "event_id", env.ID, "order_id", deadletter.Reason(e.OrderID))
		return event.OrderStatusChanged{}, nil
	}
	return e, nil
}

// deadLetter sends rec to the dead-letter topic with why. A failed produce is
// returned (the poll is retried) unless Kafka refuses the dead letter itself:
// then rec is logged and dropped, so that it cannot stop the projection.
func (p *Projector) deadLetter(ctx context.Context, rec *kgo.Record, why error) error {
	topic := p.DLQ
	if topic == "" {
		topic = event.TopicOrdersDLQ
	}
	label := "envelope"
	var de *event.DecodeError
	switch {
	case errors.As(why, &de) && de.Field != "":
		label = de.Field
	case refusedData(why):
		label = "postgres"
	}
	if err := p.Client.ProduceSync(ctx, deadletter.Record(topic, rec, why.Error())).FirstErr(); err != nil {
		if !deadletter.Refused(err) {
			return fmt.Errorf("dead-letter %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		label = "dlq-refused"
		p.Log.Error("status event dropped: the dead-letter topic refuses it too", "partition", rec.Partition, "offset", rec.Offset,
			"reason", why.Error(), "dlq_err", err)
	} else {
		p.Log.Warn("status event dead-lettered", "partition", rec.Partition, "offset", rec.Offset, "reason", why.Error())
	}
	if p.Metrics != nil {
		p.Metrics.DeadLettered(rec.Topic, label)
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
