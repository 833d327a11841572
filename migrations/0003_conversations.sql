-- Conversations and their message trees, full-text search over titles and message text,
-- and the per-user counters behind limits and cache versioning. Times are epoch ms.

ALTER TABLE users ADD COLUMN conversation_count INTEGER NOT NULL DEFAULT 0;
-- Bumped by every write to the user's conversations; part of every KV cache key.
ALTER TABLE users ADD COLUMN cache_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE conversations (
    conversation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL,
    system_prompt TEXT,
    message_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- The list query: a user's conversations, most recently updated first.
CREATE INDEX conversations_user_id_updated_at ON conversations (user_id, updated_at DESC, conversation_id DESC);

CREATE TABLE messages (
    message_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,               -- the owner, for owner-only queries and search
    parent_id TEXT REFERENCES messages (message_id),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('streaming', 'complete', 'cancelled', 'error')),
    model TEXT,
    provider TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    is_usage_estimated INTEGER NOT NULL DEFAULT 0 CHECK (is_usage_estimated IN (0, 1)),
    time_to_first_token_ms INTEGER,
    duration_ms INTEGER,
    created_at INTEGER NOT NULL
);
-- The messages list: a conversation's messages, oldest first.
CREATE INDEX messages_conversation_id_created_at ON messages (conversation_id, created_at, message_id);
CREATE INDEX messages_parent_id ON messages (parent_id);
CREATE INDEX messages_user_id ON messages (user_id);

-- Full-text search (FTS5, external content kept in step by triggers).
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, conversation_id UNINDEXED, user_id UNINDEXED,
    content = 'messages', content_rowid = 'rowid'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content, conversation_id, user_id)
    VALUES (new.rowid, new.content, new.conversation_id, new.user_id);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, conversation_id, user_id)
    VALUES ('delete', old.rowid, old.content, old.conversation_id, old.user_id);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, conversation_id, user_id)
    VALUES ('delete', old.rowid, old.content, old.conversation_id, old.user_id);
    INSERT INTO messages_fts (rowid, content, conversation_id, user_id)
    VALUES (new.rowid, new.content, new.conversation_id, new.user_id);
END;

CREATE VIRTUAL TABLE conversations_fts USING fts5 (
    title, conversation_id UNINDEXED, user_id UNINDEXED,
    content = 'conversations', content_rowid = 'rowid'
);
CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, title, conversation_id, user_id)
    VALUES (new.rowid, new.title, new.conversation_id, new.user_id);
END;
CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title, conversation_id, user_id)
    VALUES ('delete', old.rowid, old.title, old.conversation_id, old.user_id);
END;
CREATE TRIGGER conversations_fts_update AFTER UPDATE OF title ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title, conversation_id, user_id)
    VALUES ('delete', old.rowid, old.title, old.conversation_id, old.user_id);
    INSERT INTO conversations_fts (rowid, title, conversation_id, user_id)
    VALUES (new.rowid, new.title, new.conversation_id, new.user_id);
END;
