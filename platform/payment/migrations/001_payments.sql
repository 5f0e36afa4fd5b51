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

-- The first answer to each Idempotency-Key, replayed byte for byte.
CREATE TABLE idempotency_keys (
	key          text PRIMARY KEY,
	order_id     text NOT NULL,
	request_hash bytea NOT NULL,
	status_code  int NOT NULL,
	response     json NOT NULL, -- json, not jsonb: replayed byte for byte
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- Orders refunded (compensated): a new charge for them moves no money.
CREATE TABLE closed_orders (
	order_id  text PRIMARY KEY,
	closed_at timestamptz NOT NULL
);
