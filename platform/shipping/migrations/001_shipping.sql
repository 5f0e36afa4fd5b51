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

-- idempotency_keys and closed_orders: platform/idempotency (Table), as migration 002.
