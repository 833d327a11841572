-- Usage: one row per model call (chat turns and gateway requests), with the tokens it used,
-- for quotas, the usage API and billing. Times are epoch milliseconds.

CREATE TABLE usage_records (
    usage_record_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    api_key_id TEXT,                     -- set when the call was authenticated by an API key
    source TEXT NOT NULL CHECK (source IN ('chat', 'gateway')),
    model TEXT NOT NULL,
    provider TEXT,
    status TEXT NOT NULL,                -- complete, cancelled, error, cached
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    is_usage_estimated INTEGER NOT NULL DEFAULT 0 CHECK (is_usage_estimated IN (0, 1)),
    is_cache_hit INTEGER NOT NULL DEFAULT 0 CHECK (is_cache_hit IN (0, 1)),
    created_at INTEGER NOT NULL
);
CREATE INDEX usage_records_user_id_created_at ON usage_records (user_id, created_at);
CREATE INDEX usage_records_api_key_id ON usage_records (api_key_id);
