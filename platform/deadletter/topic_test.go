package deadletter

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseRef(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"orders.dlq/0@12", Ref{"orders.dlq", 0, 12}, true},
		{"a/b/3@0", Ref{"a/b", 3, 0}, true},
		{"orders.dlq/0", Ref{}, false},
		{"orders.dlq@12", Ref{}, false},
		{"/0@1", Ref{}, false},
		{"t/-1@1", Ref{}, false},
		{"t/0@x", Ref{}, false},
		{"t/0@", Ref{}, false},
	} {
		got, err := ParseRef(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

// dlqEnv is a cluster with orders (3 partitions) and orders.dlq holding the
// dead letters of two records of orders/2, one of them cut to size.
type dlqEnv struct {
	opts           []kgo.Opt
	prod           *kgo.Client
	small, big     *kgo.Record // the source records
	smallAt, bigAt Ref         // their dead letters
}

func newDLQEnv(t *testing.T) *dlqEnv {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"), kfake.SeedTopics(1, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := &dlqEnv{opts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(2 << 20)}}
	e.prod, err = kgo.NewClient(append(e.opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.prod.Close)
	e.small = &kgo.Record{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("user-1"), Value: []byte("{not json"),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("cid-1")}}}
	e.big = &kgo.Record{Topic: "orders", Partition: 2, Offset: 42, Key: []byte("user-2"), Value: bytes.Repeat([]byte("x"), MaxValue+10)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := e.prod.ProduceSync(ctx, Record("orders.dlq", e.small, "event: envelope: not a JSON envelope"), Record("orders.dlq", e.big, "too large"))
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.smallAt, e.bigAt = Ref{"orders.dlq", 0, 0}, Ref{"orders.dlq", 0, 1}
	return e
}

func TestListShowsSourceReasonAndSize(t *testing.T) {
	e := newDLQEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ls, err := List(ctx, e.opts, []string{"orders.dlq", "analytics.dlq"}, 10)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(ls) != 2 {
		t.Fatalf("listed %d dead letters, want 2 (analytics.dlq does not exist: none)", len(ls))
	}
	small, big := ls[0], ls[1]
	if small.ID != "orders.dlq/0@0" || small.SourceTopic != "orders" || small.SourcePartition != 2 || small.SourceOffset != 41 ||
		!strings.Contains(small.Reason, "not a JSON envelope") || small.Bytes != len(e.small.Value) || small.TruncatedFrom != 0 {
		t.Errorf("first = %+v", small)
	}
	if small.Replayable() != "" {
		t.Errorf("first not replayable: %s", small.Replayable())
	}
	if big.TruncatedFrom != MaxValue+10 || big.Bytes != MaxValue || big.Replayable() == "" {
		t.Errorf("second = %+v (replayable: %q), want it cut and not replayable", big, big.Replayable())
	}
	last, err := List(ctx, e.opts, []string{"orders.dlq"}, 1)
	if err != nil || len(last) != 1 || last[0].ID != "orders.dlq/0@1" {
		t.Errorf("List with limit 1 = %+v, %v; want the last one", last, err)
	}
}

func TestReplayProducesTheOriginalBack(t *testing.T) {
	e := newDLQEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dlqs := []string{"orders.dlq", "analytics.dlq"}

	for _, tt := range []struct {
		name string
		refs []Ref
		want string
	}{
		{"err/none named", nil, "needs the dead letters"},
		{"err/cut to size", []Ref{e.bigAt}, "was cut from"},
		{"err/not a dead-letter topic", []Ref{{"orders", 2, 0}}, "not a dead-letter topic"},
		{"err/no such offset", []Ref{{"orders.dlq", 0, 99}}, "orders.dlq/0@99"},
		{"err/too many", make([]Ref, MaxReplay+1), "at most 100"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			defer rcancel()
			if _, err := Replay(rctx, e.opts, dlqs, tt.refs); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Replay = %v, want an error containing %q", err, tt.want)
			}
		})
	}

	got, err := Replay(ctx, e.opts, dlqs, []Ref{e.smallAt, e.smallAt})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if len(got) != 1 || got[0].Topic != "orders" || got[0].Partition != 2 || got[0].Ref != "orders.dlq/0@0" {
		t.Fatalf("replayed %+v, want the one record back to orders/2", got)
	}
	var back *kgo.Record
	if err := read(ctx, e.opts, "orders", 2, got[0].Offset, got[0].Offset+1, func(r *kgo.Record) { back = r }); err != nil || back == nil {
		t.Fatalf("read the replayed record: %v", err)
	}
	if string(back.Key) != "user-1" || !bytes.Equal(back.Value, e.small.Value) {
		t.Errorf("replayed key %q value %q, want the original", back.Key, back.Value)
	}
	hs := map[string]string{}
	for _, h := range back.Headers {
		hs[h.Key] = string(h.Value)
	}
	if hs["correlation-id"] != "cid-1" || hs[HeaderReplayedFrom] != "orders.dlq/0@0" || hs[HeaderReason] != "" || hs[HeaderSourceTopic] != "" {
		t.Errorf("replayed headers = %v, want the original ones and %s, no dead-letter ones", hs, HeaderReplayedFrom)
	}
}
