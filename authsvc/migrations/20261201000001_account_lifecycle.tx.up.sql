-- Account lifecycle (issue 16): one-time tokens sent by mail, and the outbox
-- of user events the backend consumes.

-- Password-reset and email-verification tokens. Only the SHA-256 of the
-- 256-bit token is kept; a row is deleted when the token is used, when a
-- newer one for the same user and purpose has been mailed, or when its
-- mail could not be sent.
CREATE TABLE mail_tokens (
    id         bigserial   PRIMARY KEY,
    purpose    text        NOT NULL CHECK (purpose IN ('reset-password', 'verify-email')),
    token_hash bytea       NOT NULL UNIQUE,
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The address the mail went to: verify-email confirms only that one.
    email      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX mail_tokens_user_purpose_idx ON mail_tokens (user_id, purpose);
CREATE INDEX mail_tokens_expires_at_idx ON mail_tokens (expires_at);

-- Transactional outbox: a row is written in the same transaction as the
-- change it announces (a deleted user), and deleted once the event is in
-- the Redis stream the backend reads. deliver_after lets one change be
-- announced again later (the second, delayed sweep after a delete).
CREATE TABLE user_events (
    id            bigserial   PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('user.deleted')),
    user_id       text        NOT NULL,
    deliver_after timestamptz NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX user_events_deliver_after_idx ON user_events (deliver_after);
