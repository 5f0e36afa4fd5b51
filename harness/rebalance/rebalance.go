// Package rebalance measures how long a consumer group leaves partitions
// without a live owner after one member dies (SIGKILL: no leave request, so
// the broker only notices at the session timeout), and checks that the
// partitions of the surviving members never moved meanwhile.
//
// It only observes the group through the admin API (KIP-848
// ConsumerGroupDescribe, or the classic DescribeGroups); it never joins it.
package rebalance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Snapshot is who owns which partition of one topic at one instant.
type Snapshot struct {
	At       time.Time
	Protocol string           // "consumer" (KIP-848) or "classic"
	Members  []string         // client ids of the group's members
	Owners   map[int32]string // partition -> client id of its current owner
	// Settled is true when the group has finished its last rebalance: the
	// group is Stable and (KIP-848) every member holds exactly its target
	// assignment at the group's epoch. Until then partitions are still on
	// their way from one member to another, and a kill would be measured
	// against owners that were about to change anyway.
	Settled bool
}

// Describe returns the group's current assignment of topic as the broker
// sees it: the members' acknowledged assignments (KIP-848) or the assignment
// of the last completed rebalance (classic).
func Describe(ctx context.Context, adm *kadm.Client, group, topic string) (Snapshot, error) {
	s := Snapshot{At: time.Now(), Owners: map[int32]string{}}
	cgs, err := adm.DescribeConsumerGroups(ctx, group)
	if err == nil {
		if g, ok := cgs[group]; ok && g.Err == nil && len(g.Members) > 0 {
			s.Protocol = "consumer"
			s.Settled = g.State == "Stable"
			for _, m := range g.Members {
				s.Members = append(s.Members, m.ClientID)
				for p := range m.Assignment[topic] {
					s.Owners[p] = m.ClientID
				}
				if m.MemberEpoch != g.Epoch || !samePartitions(m.Assignment[topic], m.TargetAssignment[topic]) {
					s.Settled = false
				}
			}
			return s, nil
		}
	}
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return s, fmt.Errorf("rebalance: describe group %s: %w", group, err)
	}
	g, ok := gs[group]
	if !ok {
		return s, fmt.Errorf("rebalance: group %s not described", group)
	}
	if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
		return s, fmt.Errorf("rebalance: describe group %s: %w", group, g.Err)
	}
	s.Protocol = "classic"
	s.Settled = g.State == "Stable"
	for _, m := range g.Members {
		s.Members = append(s.Members, m.ClientID)
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				if t.Topic == topic {
					for _, p := range t.Partitions {
						s.Owners[p] = m.ClientID
					}
				}
			}
		}
	}
	return s, nil
}

func samePartitions(a, b map[int32]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			return false
		}
	}
	return true
}

// OwnedBy returns the partitions of s owned by clientID, sorted.
func (s Snapshot) OwnedBy(clientID string) []int32 {
	var ps []int32
	for p, o := range s.Owners {
		if o == clientID {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// Result is what Measure saw.
type Result struct {
	// Unowned is the time from the kill until every partition was owned by a
	// live member: how long the dead member's partitions went unprocessed.
	Unowned time.Duration
	// MemberGone is the time from the kill until the broker dropped the dead
	// member (its session timeout, seen at the sampling resolution).
	MemberGone time.Duration
	// Moved are the dead member's partitions, now owned by survivors.
	Moved []int32
	// Disturbed are survivors' partitions that were, at some sample, owned
	// by another member: with a cooperative or KIP-848 group this must stay
	// empty. (A classic group shows no assignment at all while it rebalances;
	// that is not counted, the members keep consuming meanwhile.)
	Disturbed []int32
	Samples   int
	Protocol  string
	Before    Snapshot
	After     Snapshot
}

// Measure takes a snapshot of the group (every one of partitions must be
// owned), calls kill to kill the member whose client id is dead, then samples
// the group every interval until every partition is owned by a live member,
// or ctx ends.
func Measure(ctx context.Context, adm *kadm.Client, group, topic string, partitions int32, dead string, kill func() error, every time.Duration) (Result, error) {
	var r Result
	before, err := Describe(ctx, adm, group, topic)
	if err != nil {
		return r, err
	}
	if int32(len(before.Owners)) != partitions {
		return r, fmt.Errorf("rebalance: before the kill %d of %d partitions are owned (%v)", len(before.Owners), partitions, before.Owners)
	}
	if !before.Settled {
		return r, fmt.Errorf("rebalance: group %s is still rebalancing before the kill (%v): survivors' partitions would move for that, not for the kill", group, before.Owners)
	}
	if len(before.OwnedBy(dead)) == 0 {
		return r, fmt.Errorf("rebalance: member %s owns no partition of %s: killing it measures nothing", dead, topic)
	}
	r.Before, r.Protocol, r.Moved = before, before.Protocol, before.OwnedBy(dead)
	disturbed := map[int32]bool{}

	t0 := time.Now()
	if err := kill(); err != nil {
		return r, fmt.Errorf("rebalance: kill %s: %w", dead, err)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s, err := Describe(ctx, adm, group, topic)
		if err == nil {
			r.Samples++
			if r.MemberGone == 0 && !slices.Contains(s.Members, dead) {
				r.MemberGone = s.At.Sub(t0)
			}
			live := int32(0)
			for p := int32(0); p < partitions; p++ {
				owner, ok := s.Owners[p]
				if prev := before.Owners[p]; prev != dead && ok && owner != prev {
					disturbed[p] = true
				}
				if ok && owner != dead {
					live++
				}
			}
			if live == partitions {
				r.Unowned = s.At.Sub(t0)
				r.After = s
				for p := range disturbed {
					r.Disturbed = append(r.Disturbed, p)
				}
				slices.Sort(r.Disturbed)
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("rebalance: partitions of %s still not all owned %s after the kill (last error %v): %w", dead, time.Since(t0).Round(time.Millisecond), err, ctx.Err())
		case <-tick.C:
		}
	}
}
