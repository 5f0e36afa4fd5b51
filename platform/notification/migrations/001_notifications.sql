-- Where each user is reached; a missing (NULL) address means that channel is skipped.
CREATE TABLE contacts (
	user_id    text PRIMARY KEY,
	email      text,
	phone      text,
	push_token text,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (order, template): the task, seen by the worker.
CREATE TABLE notifications (
	order_id           text NOT NULL,
	template           text NOT NULL,
	user_id            text NOT NULL,
	correlation_id     text NOT NULL DEFAULT '',
	data               jsonb NOT NULL DEFAULT '{}',
	status             text NOT NULL, -- sending, retrying, delivered, skipped, dead
	attempts           int NOT NULL DEFAULT 0,
	requested_at       timestamptz NOT NULL,
	first_delivered_at timestamptz,
	created_at         timestamptz NOT NULL DEFAULT now(),
	updated_at         timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, template)
);

-- One row per (order, template, channel). A channel is sent only by whoever
-- claims its row (status -> sending), and only while it is pending or failed,
-- so a retry re-sends exactly the failed channels and never a delivered one.
CREATE TABLE deliveries (
	order_id     text NOT NULL,
	template     text NOT NULL,
	channel      text NOT NULL,
	status       text NOT NULL, -- pending, sending, delivered, failed, skipped
	attempts     int NOT NULL DEFAULT 0,
	last_error   text NOT NULL DEFAULT '',
	claimed_by   text NOT NULL DEFAULT '',
	claimed_at   timestamptz,
	delivered_at timestamptz,
	updated_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, template, channel)
);

-- The provider sandbox's own record of every message it accepted. A resend
-- of an already accepted idempotency key is recorded with duplicate = true
-- and not delivered again (what an idempotent provider API does).
CREATE TABLE sandbox_messages (
	id              bigserial PRIMARY KEY,
	idempotency_key text NOT NULL,
	order_id        text NOT NULL,
	template        text NOT NULL,
	channel         text NOT NULL,
	recipient       text NOT NULL,
	process_id      text NOT NULL,
	received_at     timestamptz NOT NULL,
	accepted_at     timestamptz NOT NULL,
	duplicate       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX sandbox_messages_key ON sandbox_messages (idempotency_key) WHERE NOT duplicate;
CREATE INDEX sandbox_messages_order ON sandbox_messages (order_id);
