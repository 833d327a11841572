-- Summaries of the older part of a branch, made by the model when the branch outgrows the
-- context window. A summary covers the branch from its root through one message, so it is keyed
-- by that message: every branch through it shares it, and no other branch sees it. A longer
-- summary is a new row through a later message (the shorter one stays, for branches that
-- leave the path after it). Deleted with the message, its conversation or the user.
CREATE TABLE summaries (
    message_id TEXT PRIMARY KEY REFERENCES messages (message_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- The owner check and the account's deletion.
CREATE INDEX summaries_user_id ON summaries (user_id);
