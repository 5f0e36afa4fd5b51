package orchestrator

import "time"

// Failpoints that break the orchestrator on purpose (see package failpoint),
// each a realistic defect the chaos selftest must catch. Unarmed, each costs
// one map lookup per record.
const (
	// FailCommitBeforeStart marks a record for commit before its workflow
	// is started: a member that dies, or loses the partition, while the
	// start is still being retried leaves the order behind.
	FailCommitBeforeStart = "orchestrator.commit-before-start"
	// FailDropPoison drops an undecodable record without dead-lettering it,
	// and the next record of the partition with it (an offset off by one).
	FailDropPoison = "orchestrator.drop-poison"
	// FailSlow spends slowBy on every record before handling it.
	FailSlow = "orchestrator.slow"
)

const slowBy = 150 * time.Millisecond
