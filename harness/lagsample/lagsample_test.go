package lagsample

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestTrackerConvertsOffsetsToTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := NewTracker()
	for i := int64(0); i < 5; i++ {
		tr.Saw(0, i*2, t0.Add(time.Duration(i)*time.Second)) // offsets 0,2,4,6,8 (odd ones: transaction markers)
	}
	now := t0.Add(10 * time.Second)
	cases := []struct {
		name      string
		committed int64
		end       int64
		want      time.Duration
	}{
		{"behind/at a record", 2, 10, 9 * time.Second},
		{"behind/at a marker", 3, 10, 8 * time.Second},
		{"caught up", 10, 10, 0},
		{"only a marker left", 9, 10, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tr.Lag(0, tc.committed, tc.end, now)
			if got.Lag != tc.want {
				t.Errorf("committed %d end %d: got %s, want %s", tc.committed, tc.end, got.Lag, tc.want)
			}
		})
	}
	// Commits only move forward: the tracker forgot offsets below 10.
	if got := tr.Lag(0, 2, 10, now); got.Lag != 0 {
		t.Errorf("after pruning: got %s, want 0 (records below the last commit are gone)", got.Lag)
	}
}

func TestPerPollTakesTheWorstPartition(t *testing.T) {
	at := time.Unix(100, 0)
	got := PerPoll([]Sample{{At: at, Partition: 0, Lag: 5}, {At: at, Partition: 1, Lag: 9}, {At: at.Add(time.Second), Lag: 0}})
	if len(got) != 2 || got[0].Lag != 9 || got[1].Lag != 0 {
		t.Errorf("got %+v, want [9 0]", got)
	}
}

func TestSamplerAgainstKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old := time.Now().Add(-5 * time.Second).Truncate(time.Millisecond)
	for i := 0; i < 4; i++ {
		r := &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("x"), Timestamp: old.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	commit := func(p int32, at int64) {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "orders", Partition: p, At: at, LeaderEpoch: -1})
		if _, err := adm.CommitOffsets(ctx, "order-orchestrator", os); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	commit(0, 1) // the group consumed the first record only
	commit(1, 0) // and partition 1 is empty

	s := New(Config{Brokers: brokers, Group: "order-orchestrator", Topic: "orders", Interval: 20 * time.Millisecond})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()

	waitFor := func(what string, ok func(Sample) bool) Sample {
		t.Helper()
		for ctx.Err() == nil {
			for _, smp := range s.Samples() {
				if ok(smp) {
					return smp
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no sample %s; got %d samples", what, len(s.Samples()))
		return Sample{}
	}
	behind := waitFor("behind on partition 0", func(x Sample) bool { return x.Partition == 0 && x.Lag > 0 })
	// The first unconsumed record is record 1, written at old+1s.
	if want := behind.At.Sub(old.Add(time.Second)); behind.Lag != want || behind.Committed != 1 || behind.End != 4 {
		t.Errorf("behind: got %+v, want lag %s at committed 1 end 4", behind, want)
	}
	start := time.Now()
	commit(0, 4)
	waitFor("caught up on partition 0", func(x Sample) bool { return x.Partition == 0 && x.Lag == 0 && x.At.After(start) })
	for _, x := range s.Samples() {
		if x.Partition == 1 && x.Lag != 0 {
			t.Errorf("empty partition 1: got lag %s, want 0", x.Lag)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// A group that has committed nothing (a fresh stack) is at the start of the
// log: an empty partition is caught up, a partition with records lags by the
// oldest of them.
func TestSamplerGroupWithoutCommits(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old := time.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("x"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	s := New(Config{Brokers: brokers, Group: "order-orchestrator", Topic: "orders", Interval: 20 * time.Millisecond})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	var p0, p1 *Sample
	for ctx.Err() == nil && (p0 == nil || p1 == nil) {
		for _, smp := range s.Samples() {
			smp := smp
			switch {
			case smp.Partition == 0:
				p0 = &smp
			case smp.Partition == 1 && smp.Lag > 0:
				p1 = &smp
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if n, err := s.Errors(); n > 0 {
		t.Logf("%d failed polls, last: %v", n, err)
	}
	if p0 == nil || p0.Lag != 0 {
		t.Errorf("empty partition without commits: got %+v, want a sample with lag 0", p0)
	}
	if p1 == nil || p1.Lag != p1.At.Sub(old) || p1.Committed != 0 || p1.End != 1 {
		t.Errorf("unread partition without commits: got %+v, want lag from the record at %s", p1, old)
	}
}

// The sampler polls ten times a second beside the load it measures, on the
// same broker: each poll is one ListOffsets and one OffsetFetch, and the
// topic's metadata is asked for only now and then, not on every poll.
func TestSamplerPollCostsOneRequest(t *testing.T) {
	// Kafka 4.1 answers OffsetFetch up to v9 (topics by name), where
	// franz-go's sharder asked for the topic's metadata on every answer.
	vs := kversion.V4_1_0()
	vs.SetMaxKeyVersion(int16(kmsg.OffsetFetch), 9)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "orders"), kfake.MaxVersions(vs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	counts := map[int16]int{}
	for _, key := range []kmsg.Key{kmsg.Metadata, kmsg.ListOffsets, kmsg.OffsetFetch} {
		c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			mu.Lock()
			counts[req.Key()]++
			mu.Unlock()
			return nil, nil, false
		})
	}
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var os kadm.Offsets
	for p := int32(0); p < 6; p++ {
		os.Add(kadm.Offset{Topic: "orders", Partition: p, At: 0, LeaderEpoch: -1})
	}
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "order-orchestrator", os); err != nil {
		t.Fatal(err)
	}

	s := New(Config{Brokers: brokers, Group: "order-orchestrator", Topic: "orders", Interval: 10 * time.Millisecond})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	for ctx.Err() == nil && len(s.Samples()) < 6*50 {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	polls := len(s.Samples()) / 6
	if polls < 50 {
		t.Fatalf("%d polls, want 50", polls)
	}
	if n := counts[int16(kmsg.Metadata)]; n > 10 {
		t.Errorf("%d metadata requests for %d polls: the topic's metadata is asked for on every poll", n, polls)
	}
	// One listing of the ends at the start, none per poll: the end a
	// commit is compared with is what the tail has read.
	if n := counts[int16(kmsg.ListOffsets)]; n > 2 {
		t.Errorf("%d ListOffsets for %d polls, want only the one at the start", n, polls)
	}
	if n := counts[int16(kmsg.OffsetFetch)]; n > polls+2 {
		t.Errorf("%d OffsetFetch for %d polls, want one per poll", n, polls)
	}
}

// TestTailWaitGathersBatches: with TailWait the broker holds the tail's
// fetch to gather records, so batches produced one by one cost a fetch per
// wait, not one each; the tail still sees every record.
func TestTailWaitGathersBatches(t *testing.T) {
	fetchesFor := func(t *testing.T, wait time.Duration) (int, time.Duration) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "order-status"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var mu sync.Mutex
		fetches := 0
		c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			mu.Lock()
			fetches++
			mu.Unlock()
			return nil, nil, false
		})
		brokers := c.ListenAddrs()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s := New(Config{Brokers: brokers, Group: "order-projection", Topic: "order-status", TailWait: wait})
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		for ctx.Err() == nil && s.tracker == nil {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // the tail's first fetch is out
		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		mu.Lock()
		before := fetches
		mu.Unlock()
		const batches = 40
		began := time.Now()
		for i := range batches {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "order-status", Value: []byte{byte(i)}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		// Every record reaches the tracker.
		for ctx.Err() == nil {
			s.tracker.mu.Lock()
			ms := s.tracker.parts[0]
			seen := len(ms) > 0 && ms[len(ms)-1].off == batches-1
			s.tracker.mu.Unlock()
			if seen {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if ctx.Err() != nil {
			t.Fatal("the tail never saw the last record")
		}
		elapsed := time.Since(began)
		stop()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		return fetches - before, elapsed
	}
	at, atFor := fetchesFor(t, 0)
	const wait = 100 * time.Millisecond
	held, heldFor := fetchesFor(t, wait)
	t.Logf("tail fetches for 40 batches: %d without a wait (%s), %d with %s (%s)", at, atFor.Round(time.Millisecond), held, wait, heldFor.Round(time.Millisecond))
	// One fetch per wait over the produce, plus the one out when it began
	// and the one that brought the last record; not timed tightly: a slow
	// host stretches the produce and the bound with it.
	if most := int(heldFor/wait) + 3; held > most {
		t.Errorf("with a %s wait: %d fetches in %s, want at most %d", wait, held, heldFor, most)
	}
}

// The end a commit is compared with is what the tail has read: against the
// log's end it gives the same lag, because a record the tail has not read
// counts as caught up either way; a redelivered record does not move it back.
func TestTrackerSeenStandsForTheLogEnd(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(10 * time.Second)
	for _, committed := range []int64{0, 2, 3, 6, 7, 9} {
		seen, logEnd := NewTracker(), NewTracker()
		for _, tr := range []*Tracker{seen, logEnd} {
			for i := int64(0); i < 4; i++ {
				tr.Saw(0, i*2, t0.Add(time.Duration(i)*time.Second)) // 0,2,4,6; the log goes on to 9
			}
		}
		if got := seen.Seen(0); got != 7 {
			t.Fatalf("Seen = %d, want 7", got)
		}
		a := seen.Lag(0, committed, seen.Seen(0), now).Lag
		b := logEnd.Lag(0, committed, 10, now).Lag
		if a != b {
			t.Errorf("committed %d: lag %s against what the tail read, %s against the log's end", committed, a, b)
		}
	}
	tr := NewTracker()
	tr.Saw(0, 5, t0)
	tr.Lag(0, 6, 6, now) // commit past it: the mark is forgotten
	tr.Saw(0, 3, t0)     // redelivered after a reconnect
	if got := tr.Seen(0); got != 6 {
		t.Errorf("Seen after a redelivery = %d, want 6", got)
	}
	if got := tr.Lag(0, 6, tr.Seen(0), now).Lag; got != 0 {
		t.Errorf("lag after a redelivery below the commit = %s, want 0", got)
	}
	if got := NewTracker().Seen(3); got != 0 {
		t.Errorf("Seen of a partition never read = %d, want 0", got)
	}
}
