-- One shipment per order: created, then cancelled or delivered (final).
CREATE TABLE shipments (
	id              uuid PRIMARY KEY,
	order_id        text NOT NULL UNIQUE,
	idempotency_key text NOT NULL,
	content_hash    bytea NOT NULL, -- items and address, to tell a repeat from a different request
	status          text NOT NULL CHECK (status IN ('created', 'cancelled', 'delivered')),
	tracking_number text NOT NULL,
	items           jsonb NOT NULL,
	address         jsonb NOT NULL,
	correlation_id  text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	cancelled_at    timestamptz,
	delivered_at    timestamptz
);

-- The first answer to each idempotency key, replayed byte for byte.
CREATE TABLE idempotency_keys (
	key          text PRIMARY KEY,
	order_id     text NOT NULL,
	request_hash bytea NOT NULL,
	status_code  int NOT NULL,
	response     json NOT NULL, -- json, not jsonb: replayed byte for byte
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- Orders whose shipment was cancelled (compensated): they never ship again.
CREATE TABLE closed_orders (
	order_id  text PRIMARY KEY,
	closed_at timestamptz NOT NULL
);
