package lagsample

import (
	"errors"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitReaderParse: the topic's offsets out of each answer shape: by
// name (v8-v9 groups, older top-level), by id (v10+), a group that never
// committed, and errors.
func TestCommitReaderParse(t *testing.T) {
	id := [16]byte{1, 2, 3}
	r := &commitReader{group: "g", topic: "orders", topicID: id}
	part := func(p int32, off int64, code int16) kmsg.OffsetFetchResponseGroupTopicPartition {
		return kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p, Offset: off, ErrorCode: code}
	}
	for _, tc := range []struct {
		name    string
		resp    *kmsg.OffsetFetchResponse
		want    map[int32]int64
		wantErr error
	}{
		{"by name, other topics and no commit skipped", &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g", Topics: []kmsg.OffsetFetchResponseGroupTopic{
			{Topic: "orders", Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{part(0, 5, 0), part(1, -1, 0)}},
			{Topic: "shipping", Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{part(0, 9, 0)}},
		}}}}, map[int32]int64{0: 5}, nil},
		{"by id", &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g", Topics: []kmsg.OffsetFetchResponseGroupTopic{
			{TopicID: id, Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{part(2, 7, 0)}},
			{TopicID: [16]byte{9}, Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{part(2, 1, 0)}},
		}}}}, map[int32]int64{2: 7}, nil},
		{"top level (before v8)", &kmsg.OffsetFetchResponse{Topics: []kmsg.OffsetFetchResponseTopic{
			{Topic: "orders", Partitions: []kmsg.OffsetFetchResponseTopicPartition{{Partition: 3, Offset: 4}}},
		}}, map[int32]int64{3: 4}, nil},
		{"group never committed", &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g", ErrorCode: kerr.GroupIDNotFound.Code}}},
			map[int32]int64{}, nil},
		{"coordinator moved", &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g", ErrorCode: kerr.NotCoordinator.Code}}},
			nil, kerr.NotCoordinator},
		{"partition error", &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g", Topics: []kmsg.OffsetFetchResponseGroupTopic{
			{Topic: "orders", Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{part(0, 5, kerr.UnstableOffsetCommit.Code)}},
		}}}}, nil, kerr.UnstableOffsetCommit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.parse(tc.resp)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr == kerr.NotCoordinator && !isCoordinatorMoved(err) {
					t.Errorf("isCoordinatorMoved(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
