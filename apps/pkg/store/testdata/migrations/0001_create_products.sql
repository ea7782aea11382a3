-- The layout a service uses: internal/store/migrations/*.sql, embedded.
CREATE TABLE products (
    id    bigserial PRIMARY KEY,
    sku   text NOT NULL UNIQUE,
    stock integer NOT NULL CHECK (stock >= 0)
);
