// Package deadletter holds what every dead-letter place of the platform
// shares: the record a consumer sends to its dead-letter topic, the reason
// text stored beside a record or row the platform gave up on (made safe to
// store and to show), and which Kafka errors mean a record can never be
// published.
package deadletter

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxReason is the most bytes of reason text kept.
const MaxReason = 1000

// Reason returns why as text every store accepts: valid UTF-8 (invalid bytes
// become U+FFFD), no NUL or other control characters but tab, at most
// MaxReason bytes (cut at a rune boundary, marked with an ellipsis). The
// reason often quotes the refused input, which is hostile by definition.
func Reason(why string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(why, "\uFFFD") {
		if r < 0x20 && r != '\t' || r == 0x7f {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > MaxReason-len("…") {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Headers a dead-lettered record carries beside its own.
const (
	HeaderReason          = "dlq-reason"
	HeaderSourceTopic     = "dlq-source-topic"
	HeaderSourcePartition = "dlq-source-partition"
	HeaderSourceOffset    = "dlq-source-offset"
	// HeaderTruncated holds the original size in bytes when the value was
	// cut to MaxValue: the record was refused for its size, and a copy as
	// large would be refused by the dead-letter topic too.
	HeaderTruncated = "dlq-truncated-from"
)

// MaxValue is the most bytes of a refused record's value a dead letter keeps;
// MaxHeader the most of each of its header values. Both keep a dead letter
// well under Kafka's default 1 MB record limit.
const (
	MaxValue  = 256 << 10
	MaxHeader = 4 << 10
)

// Record is the dead letter of r on topic: r's key, value and headers (cut to
// MaxValue and MaxHeader, so that the dead letter of an oversized record is
// not refused in turn), plus why and where r came from.
func Record(topic string, r *kgo.Record, why string) *kgo.Record {
	value := r.Value
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+5)
	if len(value) > MaxValue {
		value = value[:MaxValue]
		headers = append(headers, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(r.Value)))})
	}
	for _, h := range r.Headers {
		if len(h.Key) > MaxHeader || len(headers) >= 64 {
			continue
		}
		if len(h.Value) > MaxHeader {
			h.Value = h.Value[:MaxHeader]
		}
		headers = append(headers, h)
	}
	key := r.Key
	if len(key) > MaxHeader {
		key = key[:MaxHeader]
	}
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(Reason(why))},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers}
}

// Refused reports whether Kafka refused a record for what it is (too large,
// invalid), so that no retry can ever publish it. Errors of the cluster's
// state (a broker down, a topic not yet known, a fenced producer) are not:
// those are waited out.
func Refused(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.InvalidTopicException, kerr.InvalidTimestamp} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
