package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"nul\x00here", "nul here"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"line\nbreak\ttab", "line break\ttab"},
	} {
		if got := Reason(tc.in); got != tc.want {
			t.Errorf("Reason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := Reason(strings.Repeat("é", 2000))
	if len(long) > MaxReason || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("Reason(long): %d bytes, valid %v, suffix %q", len(long), utf8.ValidString(long), long[len(long)-6:])
	}
}

func FuzzReason(f *testing.F) {
	f.Add("kafka refused it: MESSAGE_TOO_LARGE")
	f.Add("\x00\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		r := Reason(s)
		if len(r) > MaxReason || !utf8.ValidString(r) || strings.ContainsRune(r, 0) {
			t.Fatalf("Reason(%q) = %q", s, r)
		}
	})
}

func TestRefusedIsWhatNoRetryFixes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{kerr.MessageTooLarge, true},
		{fmt.Errorf("wrapped: %w", kerr.InvalidRecord), true},
		{kerr.UnknownTopicOrPartition, false}, // a broker restarting
		{kerr.NotLeaderForPartition, false},
		{context.DeadlineExceeded, false},
		{errors.New("dial tcp: connection refused"), false},
	} {
		if got := Refused(tc.err); got != tc.want {
			t.Errorf("Refused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestRecordOfAnOversizedRecordFitsAndSaysWhy(t *testing.T) {
	src := &kgo.Record{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("u-1"), Value: make([]byte, 1200<<10),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: make([]byte, 600<<10)}, {Key: "event-type", Value: []byte("order.created")}}}
	d := Record("orders.dlq", src, "event: envelope: not JSON\x00")
	size := len(d.Key) + len(d.Value)
	for _, h := range d.Headers {
		size += len(h.Key) + len(h.Value)
	}
	if d.Topic != "orders.dlq" || size > 300<<10 {
		t.Fatalf("dead letter on %s is %d bytes, want under 300 KiB on orders.dlq", d.Topic, size)
	}
	for k, want := range map[string]string{HeaderSourceTopic: "orders", HeaderSourcePartition: "3", HeaderSourceOffset: "42",
		HeaderTruncated: "1228800", "event-type": "order.created", HeaderReason: "event: envelope: not JSON "} {
		if got := header(d, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	small := Record("orders.dlq", &kgo.Record{Topic: "orders", Value: []byte("{")}, "bad")
	if string(small.Value) != "{" || header(small, HeaderTruncated) != "" {
		t.Errorf("a small record was changed: %q, truncated %q", small.Value, header(small, HeaderTruncated))
	}
}
