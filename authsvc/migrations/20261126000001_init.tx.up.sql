-- Accounts, sign-in sessions and JWT signing keys for authsvc (issue 3).

CREATE TABLE users (
    id             text        PRIMARY KEY,
    name           text        NOT NULL,
    email          text        NOT NULL,
    email_verified boolean     NOT NULL DEFAULT false,
    image          text,
    password_hash  text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
-- Emails are unique regardless of letter case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE sessions (
    id         text        PRIMARY KEY,
    -- SHA-256 of the session token; the token itself is never stored.
    token_hash bytea       NOT NULL UNIQUE,
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    ip_address text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    remember   boolean     NOT NULL DEFAULT true
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE signing_keys (
    kid          text        PRIMARY KEY,
    alg          text        NOT NULL,
    public_key   bytea       NOT NULL,
    -- Private key sealed with a key derived from AUTH_SECRET (AES-256-GCM).
    sealed_key   bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    -- Tokens are signed with the newest key whose activates_at has passed;
    -- a rotated-in key is published before it signs anything.
    activates_at timestamptz NOT NULL
);
CREATE INDEX signing_keys_activates_at_idx ON signing_keys (activates_at);
