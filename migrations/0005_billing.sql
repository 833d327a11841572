-- Billing and limits: Stripe customers and their subscription state, the webhook event log
-- (exactly-once), exact counters for rate limits, daily token budgets and concurrent
-- streams, and the admin audit trail. Times are epoch milliseconds unless noted.

CREATE TABLE billing_customers (
    stripe_customer_id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (user_id) ON DELETE SET NULL,
    subscription_id TEXT,
    subscription_status TEXT,
    plan TEXT,                           -- the plan the subscription gives (null: unknown price)
    current_period_end INTEGER,          -- unix seconds, as Stripe sends it
    event_at INTEGER,                    -- unix seconds of the newest subscription event applied
    updated_at INTEGER NOT NULL
);
CREATE INDEX billing_customers_user_id ON billing_customers (user_id);

CREATE TABLE webhook_events (
    webhook_event_id TEXT PRIMARY KEY,   -- Stripe's event id: a second delivery fails this key
    source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_created_at INTEGER NOT NULL,   -- unix seconds
    outcome TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX webhook_events_received_at ON webhook_events (received_at);

CREATE TABLE rate_windows (
    user_id TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    request_count INTEGER NOT NULL,
    PRIMARY KEY (user_id, window_start)
);

CREATE TABLE daily_tokens (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,                   -- UTC, YYYY-MM-DD
    tokens INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
);

CREATE TABLE active_streams (
    stream_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    started_at INTEGER NOT NULL          -- leases expire, so a lost release frees itself
);
CREATE INDEX active_streams_user_id_started_at ON active_streams (user_id, started_at);

CREATE TABLE admin_audit (
    admin_audit_id TEXT PRIMARY KEY,
    admin_user_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,                -- JSON of what changed
    created_at INTEGER NOT NULL
);
CREATE INDEX admin_audit_target_user_id ON admin_audit (target_user_id, created_at);
CREATE INDEX users_created_at ON users (created_at DESC, user_id DESC);
