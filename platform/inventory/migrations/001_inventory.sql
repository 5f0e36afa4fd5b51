-- Stock per SKU; available = on_hand - reserved, never negative.
CREATE TABLE stock (
	sku          text PRIMARY KEY,
	warehouse_id text NOT NULL,
	on_hand      bigint NOT NULL CHECK (on_hand >= 0),
	reserved     bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand)
);

-- One reservation per order; status reserved holds its items' qty in stock.reserved.
CREATE TABLE reservations (
	id              uuid PRIMARY KEY,
	order_id        text NOT NULL UNIQUE,
	idempotency_key text NOT NULL,
	status          text NOT NULL CHECK (status IN ('reserved', 'released')),
	correlation_id  text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	released_at     timestamptz
);

CREATE TABLE reservation_items (
	reservation_id uuid NOT NULL REFERENCES reservations (id),
	line           int NOT NULL,
	sku            text NOT NULL REFERENCES stock (sku),
	qty            bigint NOT NULL CHECK (qty > 0),
	warehouse_id   text NOT NULL,
	PRIMARY KEY (reservation_id, sku)
);

-- idempotency_keys and closed_orders: platform/idempotency (Table), as migration 002.
