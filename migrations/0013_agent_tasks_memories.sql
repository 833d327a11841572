-- The agent's data: the user's tasks and the notes kept about the user (memories), with a
-- full-text index over memories for recall. Times are epoch ms. Deleted with the account.

CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    notes TEXT,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    due_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER
);
-- The list queries, newest first: all of a user's tasks, or those of one status.
CREATE INDEX tasks_user_id_created_at ON tasks (user_id, created_at DESC, task_id DESC);
CREATE INDEX tasks_user_id_status_created_at ON tasks (user_id, status, created_at DESC, task_id DESC);
-- The due_before filter (tasks without a due time never match it).
CREATE INDEX tasks_user_id_due_at ON tasks (user_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX tasks_user_id_status_due_at ON tasks (user_id, status, due_at) WHERE due_at IS NOT NULL;

CREATE TABLE memories (
    memory_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- The list query: a user's memories, newest first.
CREATE INDEX memories_user_id_created_at ON memories (user_id, created_at DESC, memory_id DESC);

-- Full-text recall (FTS5, external content kept in step by triggers; queries come from
-- search::fts_query, which quotes every term).
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    content, memory_id UNINDEXED, user_id UNINDEXED,
    content = 'memories', content_rowid = 'rowid'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, content, memory_id, user_id)
    VALUES (new.rowid, new.content, new.memory_id, new.user_id);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content, memory_id, user_id)
    VALUES ('delete', old.rowid, old.content, old.memory_id, old.user_id);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF content ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content, memory_id, user_id)
    VALUES ('delete', old.rowid, old.content, old.memory_id, old.user_id);
    INSERT INTO memories_fts (rowid, content, memory_id, user_id)
    VALUES (new.rowid, new.content, new.memory_id, new.user_id);
END;
