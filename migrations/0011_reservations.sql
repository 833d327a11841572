-- What each admitted model call reserved from its day's budget, until the call settles (the
-- row is inserted in the batch that admits the call and deleted in the batch that settles
-- it). A call whose instance died never settles: once `expires_at` has passed (a running
-- call pushes it forward while it runs), the user's next admission settles it at the amount
-- reserved, with a usage record of status `unsettled`. Times are epoch milliseconds.
--
-- A running stream also renews its slot: active_streams.started_at is the time its lease was
-- last taken or renewed, and a lease not renewed for a minute is free again.

CREATE TABLE reservations (
    reservation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,                   -- the UTC day (YYYY-MM-DD) of daily_tokens it reserved from
    prompt_tokens INTEGER NOT NULL,      -- the prompt as estimated
    completion_tokens INTEGER NOT NULL,  -- the output cap times the choices asked for
    model TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('chat', 'gateway')),
    api_key_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX reservations_user_id_expires_at ON reservations (user_id, expires_at);
