package lagsample

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitReader reads a group's committed offsets on one topic with one
// OffsetFetch sent straight to the group's coordinator. kadm.FetchOffsets
// goes through franz-go's request sharder, which resolves the topic names
// of each answer with a Metadata request that skips the client's cache: a
// short chaos run counted 9.6k Metadata requests beside 9.6k OffsetFetch,
// all from the samplers, on the broker whose consumers they measure.
type commitReader struct {
	cl    *kgo.Client
	group string
	topic string
	// topicID matches the topic in a v10+ answer, which names topics by id.
	topicID [16]byte
	// coordinator is the group coordinator's node id; -1 until found and
	// after it moved.
	coordinator int32
}

func newCommitReader(cl *kgo.Client, group, topic string) *commitReader {
	return &commitReader{cl: cl, group: group, topic: topic, coordinator: -1}
}

// read returns the committed offset of each partition of the topic that has
// one. A group that does not exist yet has none, which is not an error. A
// coordinator that moved is looked up again once.
func (r *commitReader) read(ctx context.Context) (map[int32]int64, error) {
	out, err := r.readOnce(ctx)
	if isCoordinatorMoved(err) {
		r.coordinator = -1
		out, err = r.readOnce(ctx)
	}
	if err != nil {
		r.coordinator = -1
	}
	return out, err
}

func (r *commitReader) readOnce(ctx context.Context) (map[int32]int64, error) {
	if r.coordinator < 0 {
		id, err := r.findCoordinator(ctx)
		if err != nil {
			return nil, err
		}
		r.coordinator = id
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = r.group
	req.Groups = []kmsg.OffsetFetchRequestGroup{g}
	// Before v8 the request has no groups: name the group at the top too.
	req.Group = r.group
	kresp, err := r.cl.Broker(int(r.coordinator)).Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.parse(kresp.(*kmsg.OffsetFetchResponse))
}

// parse reads the topic's offsets out of an OffsetFetch answer of any
// version: per group from v8 on, at the top level before.
func (r *commitReader) parse(resp *kmsg.OffsetFetchResponse) (map[int32]int64, error) {
	out := map[int32]int64{}
	add := func(topic string, id [16]byte, part int32, offset int64, code int16) error {
		if topic != r.topic && (id == [16]byte{} || id != r.topicID) {
			return nil
		}
		if err := kerr.ErrorForCode(code); err != nil {
			return fmt.Errorf("%s[%d]: %w", r.topic, part, err)
		}
		if offset >= 0 {
			out[part] = offset
		}
		return nil
	}
	if len(resp.Groups) == 0 {
		if resp.ErrorCode != 0 {
			return out, groupErr(resp.ErrorCode)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := add(t.Topic, [16]byte{}, p.Partition, p.Offset, p.ErrorCode); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	for _, g := range resp.Groups {
		if g.Group != r.group {
			continue
		}
		if g.ErrorCode != 0 {
			return out, groupErr(g.ErrorCode)
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if err := add(t.Topic, t.TopicID, p.Partition, p.Offset, p.ErrorCode); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// groupErr is the error of a group-level code; a group that does not exist
// (never committed) is no error and no offsets.
func groupErr(code int16) error {
	err := kerr.ErrorForCode(code)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	return err
}

func (r *commitReader) findCoordinator(ctx context.Context) (int32, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = r.group
	req.CoordinatorKeys = []string{r.group}
	kresp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return -1, fmt.Errorf("find coordinator of %s: %w", r.group, err)
	}
	if len(kresp.Coordinators) == 0 {
		if err := kerr.ErrorForCode(kresp.ErrorCode); err != nil {
			return -1, fmt.Errorf("find coordinator of %s: %w", r.group, err)
		}
		return kresp.NodeID, nil
	}
	for _, c := range kresp.Coordinators {
		if c.Key != r.group {
			continue
		}
		if err := kerr.ErrorForCode(c.ErrorCode); err != nil {
			return -1, fmt.Errorf("find coordinator of %s: %w", r.group, err)
		}
		return c.NodeID, nil
	}
	return -1, fmt.Errorf("find coordinator of %s: not in the answer", r.group)
}

// isCoordinatorMoved: the group's coordinator is elsewhere now (or not
// ready), so it must be looked up again.
func isCoordinatorMoved(err error) bool {
	return errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable) ||
		errors.Is(err, kerr.CoordinatorLoadInProgress)
}
