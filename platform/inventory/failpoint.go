package inventory

// Failpoints that break Inventory on purpose (see package failpoint), each a
// realistic defect the chaos selftest must catch.
const (
	// FailReleaseNothing makes a release by order answer as usual while
	// releasing nothing: the reservation stays held.
	FailReleaseNothing = "inventory.release-nothing"
	// FailReservePerLine holds stock line by line, each in a statement of
	// its own outside the reservation's transaction: an order short of its
	// last line fails, and the lines before it stay held.
	FailReservePerLine = "inventory.reserve-per-line"
)
