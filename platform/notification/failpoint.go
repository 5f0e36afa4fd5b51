package notification

// FailResendOnRetry breaks the Notifications service on purpose (see package
// failpoint), a realistic defect the chaos selftest must catch: a retried
// task (one channel failed) sends again every channel an earlier attempt
// delivered, under a new idempotency key, so the user gets it twice.
//
// It stands for the issue's "notification enqueued without its task id
// (sent twice)": here a second task for the same (order, template) is
// harmless, because the per-channel ledger (deliveries) finds the channel
// delivered and the provider's key is the same, so what can make a
// notification go out twice is a send that skips both, which this is.
const FailResendOnRetry = "notifications.resend-on-retry"
