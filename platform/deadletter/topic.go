package deadletter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderReplayedFrom marks a record `stampede deadletter replay` produced
// back to its source topic: the dead letter it came from (Ref). Should it be
// dead-lettered again, its new dead letter keeps the mark.
const HeaderReplayedFrom = "dlq-replayed-from"

// MaxReplay is the most dead letters one Replay call produces back: replay
// is a repair, made with the records named, never a flood.
const MaxReplay = 100

// Ref names one record of a dead-letter topic: "orders.dlq/0@12" is
// partition 0, offset 12 of orders.dlq.
type Ref struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (r Ref) String() string { return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset) }

// ParseRef reads a Ref as String writes it.
func ParseRef(s string) (Ref, error) {
	slash := strings.LastIndexByte(s, '/')
	at := strings.LastIndexByte(s, '@')
	if slash < 1 || at < slash+2 || at == len(s)-1 {
		return Ref{}, fmt.Errorf("deadletter: %q is not TOPIC/PARTITION@OFFSET (e.g. orders.dlq/0@12)", s)
	}
	p, err1 := strconv.ParseInt(s[slash+1:at], 10, 32)
	o, err2 := strconv.ParseInt(s[at+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Ref{}, fmt.Errorf("deadletter: %q is not TOPIC/PARTITION@OFFSET (e.g. orders.dlq/0@12)", s)
	}
	return Ref{Topic: s[:slash], Partition: int32(p), Offset: o}, nil
}

// Letter is one record of a dead-letter topic, as `stampede deadletter list`
// shows it.
type Letter struct {
	Ref             Ref       `json:"-"`
	ID              string    `json:"ref"` // Ref.String(), what replay takes
	SourceTopic     string    `json:"sourceTopic"`
	SourcePartition int32     `json:"sourcePartition"`
	SourceOffset    int64     `json:"sourceOffset"`
	Reason          string    `json:"reason"`
	Bytes           int       `json:"bytes"`                   // the value as kept
	TruncatedFrom   int       `json:"truncatedFrom,omitempty"` // the original size, when it was cut: not replayable
	ReplayedFrom    string    `json:"replayedFrom,omitempty"`  // it was a replay of that dead letter
	At              time.Time `json:"at"`
}

// Replayable says why l cannot be produced back as it was ("" when it can).
func (l Letter) Replayable() string {
	switch {
	case l.SourceTopic == "":
		return "it names no source topic (no " + HeaderSourceTopic + " header)"
	case l.TruncatedFrom > 0:
		return fmt.Sprintf("its value was cut from %d to %d bytes: the original is gone", l.TruncatedFrom, l.Bytes)
	}
	return ""
}

func letterOf(r *kgo.Record) Letter {
	l := Letter{Ref: Ref{r.Topic, r.Partition, r.Offset}, Bytes: len(r.Value), At: r.Timestamp.UTC(), SourcePartition: -1, SourceOffset: -1}
	l.ID = l.Ref.String()
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderSourceTopic:
			l.SourceTopic = v
		case HeaderSourcePartition:
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				l.SourcePartition = int32(p)
			}
		case HeaderSourceOffset:
			if o, err := strconv.ParseInt(v, 10, 64); err == nil {
				l.SourceOffset = o
			}
		case HeaderReason:
			l.Reason = Reason(v)
		case HeaderTruncated:
			l.TruncatedFrom, _ = strconv.Atoi(v)
		case HeaderReplayedFrom:
			l.ReplayedFrom = Reason(v)
		}
	}
	return l
}

// List returns the last limit records of each partition of the dead-letter
// topics, oldest first per partition. A topic that does not exist has none.
// opts are the client options (seed brokers, ...) of the clients it makes.
func List(ctx context.Context, opts []kgo.Opt, topics []string, limit int) ([]Letter, error) {
	bounds, err := offsetBounds(ctx, opts, topics)
	if err != nil {
		return nil, err
	}
	var out []Letter
	var errs []error
	for _, topic := range topics {
		parts := make([]int32, 0, len(bounds[topic]))
		for p := range bounds[topic] {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			b := bounds[topic][p]
			from := max(b[0], b[1]-int64(limit), 0)
			if from >= b[1] {
				continue
			}
			if err := read(ctx, opts, topic, p, from, b[1], func(r *kgo.Record) { out = append(out, letterOf(r)) }); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return out, errors.Join(errs...)
}

// read calls each for the records of topic/part from offset from up to
// (not including) to; it fails when they do not come within ctx.
func read(ctx context.Context, opts []kgo.Opt, topic string, part int32, from, to int64, each func(*kgo.Record)) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))...)
	if err != nil {
		return fmt.Errorf("deadletter: kafka client: %w", err)
	}
	defer cl.Close()
	next := from
	for next < to {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("deadletter: read %s/%d from %d to %d: got to %d: %w", topic, part, from, to, next, ctx.Err())
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("deadletter: read %s/%d: %w", topic, part, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < to {
				each(r)
			}
			next = r.Offset + 1
		})
	}
	return nil
}

// offsetBounds returns, per topic and partition, the first offset and the
// end offset (one past the last).
func offsetBounds(ctx context.Context, opts []kgo.Opt, topics []string) (map[string]map[int32][2]int64, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("deadletter: kafka client: %w", err)
	}
	defer cl.Close()
	ac := kadm.NewClient(cl)
	starts, err := ac.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("deadletter: list start offsets: %w", err)
	}
	ends, err := ac.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("deadletter: list end offsets: %w", err)
	}
	out := map[string]map[int32][2]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return
		}
		if out[e.Topic] == nil {
			out[e.Topic] = map[int32][2]int64{}
		}
		b := [2]int64{0, e.Offset}
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			b[0] = s.Offset
		}
		out[e.Topic][e.Partition] = b
	})
	return out, nil
}

// Replayed is one dead letter produced back to where it came from.
type Replayed struct {
	Ref       string `json:"ref"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"` // where the replayed record landed
}

// Replay produces the original record of each dead letter named back to its
// source topic and partition: its key, value and headers, without the
// dead-letter headers, marked HeaderReplayedFrom. It refuses, before
// producing anything, more than MaxReplay refs, a ref that is not a dead
// letter, one whose value was cut (the original is gone) and one whose
// source is a dead-letter topic. opts are the client options (seed brokers,
// ...) of the clients it makes; dlqTopics are the dead-letter topics.
func Replay(ctx context.Context, opts []kgo.Opt, dlqTopics []string, refs []Ref) ([]Replayed, error) {
	if len(refs) == 0 {
		return nil, errors.New("deadletter: replay needs the dead letters to replay (TOPIC/PARTITION@OFFSET, from list)")
	}
	if len(refs) > MaxReplay {
		return nil, fmt.Errorf("deadletter: %d dead letters named, at most %d per replay", len(refs), MaxReplay)
	}
	isDLQ := map[string]bool{}
	for _, t := range dlqTopics {
		isDLQ[t] = true
	}
	for _, ref := range refs {
		if !isDLQ[ref.Topic] {
			return nil, fmt.Errorf("deadletter: %s: %s is not a dead-letter topic (%s)", ref, ref.Topic, strings.Join(dlqTopics, ", "))
		}
	}
	bounds, err := offsetBounds(ctx, opts, dlqTopics)
	if err != nil {
		return nil, err
	}
	seen := map[Ref]bool{}
	var recs []*kgo.Record
	var refOf = map[*kgo.Record]Ref{}
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		b, ok := bounds[ref.Topic][ref.Partition]
		if !ok || ref.Offset < b[0] || ref.Offset >= b[1] {
			return nil, fmt.Errorf("deadletter: %s: no such record (%s/%d holds offsets %d to %d)", ref, ref.Topic, ref.Partition, b[0], b[1]-1)
		}
		var got *kgo.Record
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := read(rctx, opts, ref.Topic, ref.Partition, ref.Offset, ref.Offset+1, func(r *kgo.Record) {
			if r.Offset == ref.Offset {
				got = r
			}
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("deadletter: %s: %w", ref, err)
		}
		if got == nil {
			return nil, fmt.Errorf("deadletter: %s: no such record", ref)
		}
		l := letterOf(got)
		if why := l.Replayable(); why != "" {
			return nil, fmt.Errorf("deadletter: %s cannot be replayed: %s", ref, why)
		}
		if isDLQ[l.SourceTopic] {
			return nil, fmt.Errorf("deadletter: %s cannot be replayed: its source %s is a dead-letter topic", ref, l.SourceTopic)
		}
		rec := &kgo.Record{Topic: l.SourceTopic, Partition: l.SourcePartition, Key: got.Key, Value: got.Value}
		for _, h := range got.Headers {
			if !strings.HasPrefix(h.Key, "dlq-") {
				rec.Headers = append(rec.Headers, h)
			}
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderReplayedFrom, Value: []byte(ref.String())})
		recs = append(recs, rec)
		refOf[rec] = ref
	}
	// Back to the partition it was read from: consumers keep per-key order
	// per partition.
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, fmt.Errorf("deadletter: kafka client: %w", err)
	}
	defer prod.Close()
	var out []Replayed
	var errs []error
	for _, res := range prod.ProduceSync(ctx, recs...) {
		ref := refOf[res.Record]
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("deadletter: %s: produce to %s/%d: %w", ref, res.Record.Topic, res.Record.Partition, res.Err))
			continue
		}
		out = append(out, Replayed{Ref: ref.String(), Topic: res.Record.Topic, Partition: res.Record.Partition, Offset: res.Record.Offset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, errors.Join(errs...)
}
