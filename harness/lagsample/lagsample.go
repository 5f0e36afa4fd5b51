// Package lagsample measures a consumer group's lag in time from outside the
// group, as an independent check on what the group's members report about
// themselves: it reads the group's committed offsets with kadm (10 times a
// second by default) and converts offset lag into time with a tailing
// consumer that remembers each record's timestamp.
//
// Lag in time of a partition = now - timestamp of the first record the group
// has not committed; 0 when the group has committed everything the tail has
// seen. It must never join the group or commit anything.
package lagsample

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sample is one partition's lag at one instant.
type Sample struct {
	At        time.Time `json:"at"`
	Partition int32     `json:"partition"`
	Committed int64     `json:"committed"` // the group's committed offset (next to consume)
	// End is one past the highest offset the harness's tail has read on the
	// partition: records past it count as caught up (see Tracker.Lag).
	End int64         `json:"end"`
	Lag time.Duration `json:"lagNs"`
}

// mark is one record seen by the tail: its offset and timestamp.
type mark struct {
	off int64
	ts  time.Time
}

// Tracker holds, per partition, the timestamps of records not yet committed
// by the group. It is the offset -> time conversion, apart from Kafka so it
// can be tested alone.
type Tracker struct {
	mu    sync.Mutex
	parts map[int32][]mark
	seen  map[int32]int64 // one past the highest offset seen, per partition
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{parts: map[int32][]mark{}, seen: map[int32]int64{}}
}

// Seen returns one past the highest offset the tail has seen on partition
// (0 when none): the end the group's commit is compared with. Records past
// it count as caught up in Lag whatever the log's end is, so the sampler
// does not ask the broker for the end offsets on every poll.
func (t *Tracker) Seen(partition int32) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[partition]
}

// Saw records a record's offset and timestamp (in offset order per partition).
func (t *Tracker) Saw(partition int32, offset int64, ts time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if offset < t.seen[partition] {
		return // redelivery after a tail reconnect
	}
	t.parts[partition] = append(t.parts[partition], mark{offset, ts})
	t.seen[partition] = offset + 1
}

// Lag converts one partition's committed offset into time lag at now, and
// forgets records below the commit. Records the tail has not seen yet count
// as caught up: the tail reads the same broker the group does, faster.
func (t *Tracker) Lag(partition int32, committed, end int64, now time.Time) Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Sample{At: now, Partition: partition, Committed: committed, End: end}
	ms := t.parts[partition]
	i := sort.Search(len(ms), func(i int) bool { return ms[i].off >= committed })
	t.parts[partition] = ms[i:]
	ms = ms[i:]
	switch {
	case committed >= end:
		// caught up
	case len(ms) > 0:
		// The first record at or after the commit (the commit itself may
		// point at a transaction marker, which has no timestamp of its own).
		s.Lag = now.Sub(ms[0].ts)
	default:
		// Nothing unconsumed seen: only control records (transaction
		// markers) remain between the commit and the end, or the tail is
		// about to see the records. Count it as caught up.
	}
	if s.Lag < 0 {
		s.Lag = 0
	}
	return s
}

// Config says what to sample.
type Config struct {
	Brokers  []string
	Group    string        // e.g. order-orchestrator
	Topic    string        // e.g. orders
	Interval time.Duration // default 100 ms (10 Hz)
	// TailWait, when set, lets the broker hold the tail's fetch that long
	// to gather records, instead of answering each produce batch at once.
	// A record the tail has not seen yet counts as caught up, so lags under
	// about TailWait read 0; keep it well under the gate's limit. Zero: no
	// wait (a topic under a tight gate).
	TailWait time.Duration
	// Out, when set, receives every sample as a JSON line.
	Out io.Writer
}

// Sampler runs the tail and the offset polling.
type Sampler struct {
	cfg     Config
	tracker *Tracker
	mu      sync.Mutex
	samples []Sample
	errs    int
	lastErr error
	// lastOK is the last poll that answered; open is the gap since it, if
	// polls fail now.
	lastOK time.Time
	open   *Gap
	gaps   []Gap
}

// Gap is a stretch of time without a sample: every poll in it failed. It is
// reported, never dropped: lag nobody measured is not lag under the limit.
type Gap struct {
	From   time.Time // the last poll that answered before it (or the first failed one)
	To     time.Time // the first poll that answered after it (zero: still open)
	Reason string    // the first error
}

// New returns a sampler; Run starts it.
func New(cfg Config) *Sampler {
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	return &Sampler{cfg: cfg}
}

// Run samples until ctx is done. It returns an error only when it cannot
// start; later errors (a broker restart) are counted and retried.
func (s *Sampler) Run(ctx context.Context) error {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("lagsample: admin client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	// Start the tail at the group's commits, so every record the group has
	// not consumed yet gets a timestamp.
	start := map[int32]kgo.Offset{}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ends, err := adm.ListEndOffsets(sctx, s.cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		cancel()
		return fmt.Errorf("lagsample: list end offsets of %s: %w", s.cfg.Topic, err)
	}
	commits := newCommitReader(admCl, s.cfg.Group, s.cfg.Topic)
	if td, err := adm.ListTopics(sctx, s.cfg.Topic); err == nil {
		commits.topicID = td[s.cfg.Topic].ID
	}
	committed, err := commits.read(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("lagsample: fetch offsets of group %s: %w", s.cfg.Group, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		// A partition the group has never committed is read by it from
		// the beginning (the orchestrators reset to the earliest offset).
		start[o.Partition] = kgo.NewOffset().AtStart()
		if c, ok := committed[o.Partition]; ok {
			start[o.Partition] = kgo.NewOffset().At(c)
		}
	})
	s.tracker = NewTracker()
	tailOpts := []kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A fetch returns as soon as a record is readable (FetchMinBytes 1,
		// and a transaction's commit marker completes a read_committed
		// fetch), so the longest wait only sets how often an idle tail asks.
		kgo.FetchMaxWait(500 * time.Millisecond)}
	if s.cfg.TailWait > 0 {
		// The broker answers after TailWait with what it has (or at
		// tailMinBytes): one fetch per TailWait however many batches come.
		tailOpts = append(tailOpts, kgo.FetchMaxWait(s.cfg.TailWait), kgo.FetchMinBytes(tailMinBytes))
	}
	tail, err := kgo.NewClient(tailOpts...)
	if err != nil {
		return fmt.Errorf("lagsample: tail client: %w", err)
	}
	defer tail.Close()
	go func() {
		for {
			fs := tail.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { s.tracker.Saw(r.Partition, r.Offset, r.Timestamp) })
		}
	}()

	parts := partitionsOf(ends)
	listed := time.Now()
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if time.Since(listed) >= partitionsRefresh {
			// A topic may gain partitions; look again now and then, not on
			// every poll.
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			if td, err := adm.ListTopics(lctx, s.cfg.Topic); err == nil && td.Error() == nil {
				parts = partitionsOfTopic(td, s.cfg.Topic)
				commits.topicID = td[s.cfg.Topic].ID
				listed = time.Now()
			}
			cancel()
		}
		s.poll(ctx, admCl, commits, parts)
	}
}

// tailMinBytes is what a TailWait fetch waits to gather at most.
const tailMinBytes = 1 << 20

// partitionsRefresh is how often Run lists the topic's partitions again.
const partitionsRefresh = 10 * time.Second

func partitionsOf(ends kadm.ListedOffsets) []int32 {
	var ps []int32
	ends.Each(func(o kadm.ListedOffset) { ps = append(ps, o.Partition) })
	slices.Sort(ps)
	return ps
}

func partitionsOfTopic(td kadm.TopicDetails, topic string) []int32 {
	var ps []int32
	for p := range td[topic].Partitions {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// listStarts asks the partitions' leader for the log start of each of
// parts, in one ListOffsets request (kadm's listings ask for the topic's
// metadata first, every time). Only partitions the group never committed
// need it: the polls read no other offsets of the log.
func listStarts(ctx context.Context, cl *kgo.Client, topic string, parts []int32) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = -2 // the log start
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	out := make(map[int32]int64, len(parts))
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			return nil, sh.Err
		}
		for _, t := range sh.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("%s[%d]: no offset in the answer", topic, p)
		}
	}
	return out, nil
}

func (s *Sampler) poll(ctx context.Context, cl *kgo.Client, commitsOf *commitReader, parts []int32) {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// One request a poll: the group's commits. The end each is compared
	// with is what the tail has read (Tracker.Seen), read after the commits:
	// asking the broker for the log's end as well gave the same lags (a
	// record the tail has not read counts as caught up either way) for a
	// ListOffsets a poll, 30 a second for the chaos run's three samplers.
	sent := time.Now()
	commits, err := commitsOf.read(pctx)
	// The broker answered somewhere within the round trip: its middle.
	now := sent.Add(time.Since(sent) / 2)
	// Nothing committed yet on a partition: the group's position is the
	// start of the log, so an empty partition is caught up and a partition
	// with records the group never read lags by the oldest one. Asked only
	// for such partitions, which after the group's first commits are none.
	var uncommitted []int32
	if err == nil {
		for _, p := range parts {
			if _, ok := commits[p]; !ok {
				uncommitted = append(uncommitted, p)
			}
		}
	}
	var starts map[int32]int64
	if err == nil && len(uncommitted) > 0 {
		starts, err = listStarts(pctx, cl, s.cfg.Topic, uncommitted)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.mu.Lock()
			s.errs++
			s.lastErr = err
			if s.open == nil {
				from := s.lastOK
				if from.IsZero() {
					from = time.Now()
				}
				s.open = &Gap{From: from, Reason: err.Error()}
			}
			s.mu.Unlock()
		}
		return
	}
	s.mu.Lock()
	s.lastOK = now
	if s.open != nil {
		s.open.To = now
		s.gaps = append(s.gaps, *s.open)
		s.open = nil
	}
	s.mu.Unlock()
	batch := make([]Sample, 0, len(parts))
	for _, p := range parts {
		committed, ok := starts[p]
		if c, found := commits[p]; found {
			committed, ok = c, true
		}
		if !ok || committed < 0 {
			continue
		}
		batch = append(batch, s.tracker.Lag(p, committed, s.tracker.Seen(p), now))
	}
	s.mu.Lock()
	s.samples = append(s.samples, batch...)
	s.mu.Unlock()
	if s.cfg.Out != nil {
		enc := json.NewEncoder(s.cfg.Out)
		for _, b := range batch {
			enc.Encode(b)
		}
	}
}

// Samples returns every sample so far.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// Gaps returns the stretches without a sample so far; one still open ends now.
func (s *Sampler) Gaps() []Gap {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Gap(nil), s.gaps...)
	if s.open != nil {
		g := *s.open
		g.To = time.Now()
		out = append(out, g)
	}
	return out
}

// CaughtUp reports whether the latest poll, at most max old, found the group
// with nothing left to consume on any partition.
func (s *Sampler) CaughtUp(max time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 || s.open != nil {
		return false
	}
	at := s.samples[len(s.samples)-1].At
	if time.Since(at) > max {
		return false
	}
	for i := len(s.samples) - 1; i >= 0 && s.samples[i].At.Equal(at); i-- {
		if s.samples[i].Lag > 0 {
			return false
		}
	}
	return true
}

// Errors returns how many polls failed and the last error.
func (s *Sampler) Errors() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs, s.lastErr
}

// Latest returns the highest lag of the most recent poll.
func (s *Sampler) Latest() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return 0, false
	}
	at := s.samples[len(s.samples)-1].At
	var max time.Duration
	for i := len(s.samples) - 1; i >= 0 && s.samples[i].At.Equal(at); i-- {
		if s.samples[i].Lag > max {
			max = s.samples[i].Lag
		}
	}
	return max, true
}

// PerPoll folds samples into one value per poll: the highest lag of any
// partition at that instant, Blind when on some partition the group had
// committed past what the tail had read.
func PerPoll(samples []Sample) []Point {
	by := map[time.Time]Point{}
	for _, s := range samples {
		p, ok := by[s.At]
		if !ok {
			p.At = s.At
		}
		p.Lag = max(p.Lag, s.Lag)
		p.Blind = p.Blind || s.Blind()
		by[s.At] = p
	}
	out := make([]Point, 0, len(by))
	for _, p := range by {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Point is the group's lag at one instant.
type Point struct {
	At    time.Time
	Lag   time.Duration
	Blind bool // see Sample.Blind
}

// Blind reports whether the group had committed past what the tail had
// read: the records between are counted as caught up though the tail has
// not seen their times, so the sample's lag is a floor, not a reading. The
// tail reads faster than the group, except while it (re)connects: at the
// sampler's start, and for seconds after a broker restart, when a backlog
// the sampler cannot see yet is in flight.
func (s Sample) Blind() bool { return s.Committed > s.End }
