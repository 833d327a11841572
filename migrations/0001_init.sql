-- edgechat schema, part 1: bookkeeping every later migration can rely on.
-- Migrations are never edited once applied; add a new numbered file instead.

CREATE TABLE IF NOT EXISTS schema_info (
    schema_info_id INTEGER PRIMARY KEY CHECK (schema_info_id = 1),
    created_at INTEGER NOT NULL
);

INSERT OR IGNORE INTO schema_info (schema_info_id, created_at)
VALUES (1, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
