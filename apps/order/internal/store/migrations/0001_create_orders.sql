CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    customer_id      text NOT NULL,
    idempotency_key  text NOT NULL,
    fingerprint      text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'reserved', 'charged', 'confirmed', 'failed')),
    reason           text NOT NULL DEFAULT '',
    total_cents      bigint NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    currency         text NOT NULL DEFAULT '',
    reservation_id   text NOT NULL DEFAULT '',
    payment_id       text NOT NULL DEFAULT '',
    reserve_unknown  boolean NOT NULL DEFAULT false,
    charge_unknown   boolean NOT NULL DEFAULT false,
    compensated      boolean NOT NULL DEFAULT false,
    -- While lease_until is in the future some process is driving the saga;
    -- after it, the recovery loop may take the order over.
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_idempotency UNIQUE (customer_id, idempotency_key),
    CONSTRAINT orders_reason CHECK ((status = 'failed') = (reason <> ''))
);

CREATE INDEX orders_customer_created ON orders (customer_id, created_at DESC);
CREATE INDEX orders_unfinished ON orders (lease_until)
    WHERE status <> 'confirmed' AND NOT (status = 'failed' AND compensated);

CREATE TABLE order_items (
    order_id  uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line      integer NOT NULL,
    sku       text NOT NULL,
    quantity  integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line)
);

-- The saga's journal: one row per step attempt and outcome.
CREATE TABLE saga_steps (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    step        text NOT NULL,
    outcome     text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX saga_steps_order ON saga_steps (order_id, id);

-- Events written in the same transaction as the order change they report,
-- relayed to Redis by the outbox relay.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL,
    event_type  text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);

CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
