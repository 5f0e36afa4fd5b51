CREATE TABLE orders (
	id               uuid PRIMARY KEY,
	user_id          text NOT NULL,
	currency         char(3) NOT NULL,
	total_cents      bigint NOT NULL CHECK (total_cents >= 0),
	items            jsonb NOT NULL,
	shipping_address jsonb NOT NULL,
	payment_method   text NOT NULL,
	status           text NOT NULL,
	status_seq       int NOT NULL DEFAULT 0,
	failure_reason   text NOT NULL DEFAULT '',
	correlation_id   text NOT NULL,
	idempotency_key  text UNIQUE,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL
);
CREATE INDEX orders_user_id ON orders (user_id);
CREATE INDEX orders_created_at ON orders (created_at, id);

-- One row per status change; seq 0 is the acceptance, the saga numbers the rest.
CREATE TABLE order_history (
	order_id uuid NOT NULL REFERENCES orders (id),
	seq      int NOT NULL,
	status   text NOT NULL,
	at       timestamptz NOT NULL,
	reason   text NOT NULL DEFAULT '',
	PRIMARY KEY (order_id, seq)
);

-- The first response to each Idempotency-Key, replayed for the same body.
CREATE TABLE idempotency_keys (
	key          text PRIMARY KEY,
	request_hash bytea NOT NULL,
	order_id     uuid NOT NULL REFERENCES orders (id),
	response     jsonb NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now()
);
