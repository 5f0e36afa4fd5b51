package order

// Failpoints that break the Orders service on purpose (see package
// failpoint), each a realistic defect the chaos selftest must catch.
const (
	// FailTotalOffByOne leaves an order's last line out of its total, so
	// every multi-line order is charged one line's price short (a one-line
	// order: nothing).
	FailTotalOffByOne = "orders.total-off-by-one"
	// FailProjectionDropsFailed makes the status projection drop the
	// failed status: a failed order keeps showing compensating.
	FailProjectionDropsFailed = "orders.projection-drops-failed"
	// FailPublishOutsideOutbox commits the order without its events and
	// publishes them to Kafka after the commit, logging (only) a failed
	// publish: the dual write the outbox exists to prevent. Wired in
	// cmd/stampede (serve_orders.go) through Store.Direct.
	FailPublishOutsideOutbox = "orders.publish-outside-outbox"
)
