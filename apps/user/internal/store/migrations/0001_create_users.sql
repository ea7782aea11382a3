-- Accounts. Customers log in with their email; the first admin with the
-- username from the operator's admin Secret. Uniqueness ignores case, and a
-- username can never look like an email, so one login names one account.
CREATE TABLE users (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text        CHECK (email LIKE '%_@_%' AND length(email) <= 254),
    username      text        CHECK (username ~ '^[a-z][a-z0-9._-]{0,63}$'),
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    roles         text[]      NOT NULL
                  CONSTRAINT users_roles_check
                  CHECK (cardinality(roles) >= 1 AND roles <@ ARRAY['customer', 'admin']::text[]),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_login_check CHECK (email IS NOT NULL OR username IS NOT NULL)
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_username_key ON users (username) WHERE username IS NOT NULL;

-- Failed logins per account, in a fixed window: the first failure opens the
-- window, and an account with too many failures in it is locked until it
-- ends. Kept here, not in one replica's memory, so every replica agrees.
-- account is the login as typed, case folded, whether or not it exists.
CREATE TABLE login_failures (
    account      text        PRIMARY KEY CHECK (length(account) <= 320),
    failures     integer     NOT NULL CHECK (failures > 0),
    window_start timestamptz NOT NULL
);

CREATE INDEX login_failures_window_start_idx ON login_failures (window_start);
