-- A send's Idempotency-Key and the turn it started: a repeat of the same request (same path,
-- same body) within 24 hours returns that turn instead of starting another. Written in the
-- batch that stores the turn, only if the turn was stored. Deleted with the user; a user's
-- expired keys are deleted by their next keyed send.
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    assistant_message_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_user_created ON idempotency_keys (user_id, created_at);
