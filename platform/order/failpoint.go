package order

// Failpoints that break the Orders service on purpose (see package
// failpoint), each a realistic defect the chaos selftest must catch.
const (
	// FailProjectionDropsFailed makes the status projection drop the
	// failed status: a failed order keeps showing compensating.
	FailProjectionDropsFailed = "orders.projection-drops-failed"
	// FailPublishOutsideOutbox commits the order without its events and
	// publishes them to Kafka after the commit, logging (only) a failed
	// publish: the dual write the outbox exists to prevent. Wired in
	// cmd/stampede (serve_orders.go) through Store.Direct.
	FailPublishOutsideOutbox = "orders.publish-outside-outbox"
)
