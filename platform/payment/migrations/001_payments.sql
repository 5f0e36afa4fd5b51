-- One row per charge attempt that got an answer: captured (money moved),
-- refunded (moved and given back in full) or declined (402, nothing moved).
CREATE TABLE charges (
	id              uuid PRIMARY KEY,
	order_id        text NOT NULL,
	idempotency_key text NOT NULL UNIQUE,
	status          text NOT NULL CHECK (status IN ('captured', 'refunded', 'declined')),
	decline_code    text NOT NULL DEFAULT '',
	amount_cents    bigint NOT NULL CHECK (amount_cents >= 0),
	currency        char(3) NOT NULL,
	correlation_id  text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	refunded_at     timestamptz
);
CREATE INDEX charges_order_id ON charges (order_id);

-- Full refunds; a charge is refunded at most once.
CREATE TABLE refunds (
	id           uuid PRIMARY KEY,
	charge_id    uuid NOT NULL UNIQUE REFERENCES charges (id),
	order_id     text NOT NULL,
	amount_cents bigint NOT NULL,
	currency     char(3) NOT NULL,
	created_at   timestamptz NOT NULL
);
CREATE INDEX refunds_order_id ON refunds (order_id);

-- idempotency_keys and closed_orders: platform/idempotency (Table), as migration 002.
