-- One row per idempotency key: the key is claimed by inserting the row as
-- 'pending' in a transaction of its own, so every replica sees the claim.
CREATE TABLE payments (
    id              uuid PRIMARY KEY,
    idempotency_key text NOT NULL,
    request_hash    bytea NOT NULL,
    order_id        uuid NOT NULL,
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    card_last4      text NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
    -- AES-256-GCM: key ID, nonce, ciphertext and tag; never the card in clear.
    card_sealed     bytea NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'captured', 'declined', 'failed', 'refunded')),
    failure_reason  text NOT NULL DEFAULT '',
    refunded_cents  bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT payments_refund_within_capture CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    CONSTRAINT payments_refund_needs_capture CHECK (refunded_cents = 0 OR status = 'refunded')
);

CREATE INDEX payments_order_id_idx ON payments (order_id);

CREATE TABLE refunds (
    id              uuid PRIMARY KEY,
    payment_id      uuid NOT NULL REFERENCES payments (id),
    idempotency_key text NOT NULL,
    request_hash    bytea NOT NULL,
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    refunded_after  bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_idempotency_key_key UNIQUE (idempotency_key)
);

CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);
