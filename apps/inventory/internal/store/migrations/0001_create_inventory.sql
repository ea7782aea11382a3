-- Stock is guarded by the database: whatever the service does, reserved
-- units never exceed the units on hand, and neither goes below zero. A
-- reservation adds to reserved in the same transaction that records it, so
-- an oversell fails on products_reserved_within_on_hand and rolls the whole
-- reservation back.
CREATE TABLE products (
    sku         text PRIMARY KEY CONSTRAINT products_sku_format CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name        text NOT NULL CONSTRAINT products_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    price_cents bigint NOT NULL CONSTRAINT products_price_non_negative CHECK (price_cents >= 0),
    currency    text NOT NULL CONSTRAINT products_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    on_hand     integer NOT NULL CONSTRAINT products_on_hand_non_negative CHECK (on_hand >= 0),
    reserved    integer NOT NULL DEFAULT 0 CONSTRAINT products_reserved_non_negative CHECK (reserved >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_reserved_within_on_hand CHECK (reserved <= on_hand)
);

-- One reservation per order: order_id is the idempotency key, and
-- request_hash tells a retry (same body) from a reuse (different body).
CREATE TABLE reservations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id     uuid NOT NULL CONSTRAINT reservations_order_id_key UNIQUE,
    request_hash text NOT NULL,
    status       text NOT NULL DEFAULT 'reserved'
                 CONSTRAINT reservations_status_known CHECK (status IN ('reserved', 'committed', 'released', 'expired')),
    currency     text NOT NULL,
    total_cents  bigint NOT NULL CONSTRAINT reservations_total_non_negative CHECK (total_cents >= 0),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The sweeper's work list: only active reservations, oldest deadline first.
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'reserved';

CREATE TABLE reservation_items (
    reservation_id uuid NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    sku            text NOT NULL REFERENCES products (sku),
    quantity       integer NOT NULL CONSTRAINT reservation_items_quantity_positive CHECK (quantity > 0),
    price_cents    bigint NOT NULL CONSTRAINT reservation_items_price_non_negative CHECK (price_cents >= 0),
    PRIMARY KEY (reservation_id, sku)
);
