-- Accounts: users, sessions (refresh-token families), refresh tokens, API keys, and the
-- login-attempt counters behind brute-force protection. Times are epoch milliseconds.

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    email TEXT NOT NULL,                 -- trimmed, lowercased
    display_name TEXT,
    password_hash TEXT NOT NULL,         -- pbkdf2-sha256$iterations$salt$hash
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    plan TEXT NOT NULL DEFAULT 'free',
    is_disabled INTEGER NOT NULL DEFAULT 0 CHECK (is_disabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_email_unique ON users (email);

-- One row per login: the family every rotated refresh token of that login belongs to.
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    refresh_token_hash TEXT PRIMARY KEY, -- SHA-256 hex of the token
    session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,                     -- set when rotated; a second use revokes the family
    replaced_by_hash TEXT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    api_key_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,            -- first characters, shown in listings
    key_hash TEXT NOT NULL,              -- SHA-256 hex of the key
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX api_keys_key_hash_unique ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_created_at ON api_keys (user_id, created_at);

CREATE TABLE login_attempts (
    attempt_key TEXT PRIMARY KEY,        -- email:<sha256 of the address> or ip:<address>
    attempt_count INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL
);
