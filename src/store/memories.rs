//! Memories in D1: owner-scoped writes and reads, keyset pages newest first, and full-text
//! recall over the user's own memories (the FTS5 index of migration 0013).

use super::{num, rows, signed, text, Db};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::agent::memories::Memory;
use edgechat_core::cursor::Cursor;

// Only under the user's cap (?5), in one statement (see tasks' INSERT); RETURNING tells
// whether it happened (`changes` counts the FTS trigger's rows too).
const INSERT: &str = "INSERT INTO memories (memory_id, user_id, content, created_at) \
     SELECT ?1, ?2, ?3, ?4 WHERE (SELECT COUNT(*) FROM memories WHERE user_id = ?2) < ?5 RETURNING memory_id";
const LIST_FIRST: &str = "SELECT memory_id, content, created_at FROM memories WHERE user_id = ?1 \
     ORDER BY created_at DESC, memory_id DESC LIMIT ?2";
const LIST_AFTER: &str = "SELECT memory_id, content, created_at FROM memories WHERE user_id = ?1 \
     AND (created_at < ?2 OR (created_at = ?2 AND memory_id < ?3)) \
     ORDER BY created_at DESC, memory_id DESC LIMIT ?4";
// Best match first (bm25: lower is better); owner-scoped on both tables.
const SEARCH: &str = "SELECT m.memory_id, m.content, m.created_at FROM memories_fts f \
     JOIN memories m ON m.rowid = f.rowid AND m.user_id = ?1 \
     WHERE memories_fts MATCH ?2 AND f.user_id = ?1 \
     ORDER BY bm25(memories_fts), m.memory_id LIMIT ?3 OFFSET ?4";
// RETURNING: D1's `changes` is not reliable for statements that fire the FTS triggers.
const DELETE: &str = "DELETE FROM memories WHERE memory_id = ?1 AND user_id = ?2 RETURNING memory_id";

/// Everything a user owns in this module, deleted with their account.
pub const DELETE_ALL_OF_USER: &str = "DELETE FROM memories WHERE user_id = ?1";

/// Stores the memory unless the user already has `max_memories`; false when refused.
pub async fn insert(
    db: &Db,
    memory_id: &str,
    user_id: &str,
    content: &str,
    now: u64,
    max_memories: u64,
) -> Result<bool, AppError> {
    let args = [text(memory_id), text(user_id), text(content), num(now), num(max_memories)];
    let result = db.query("insert memory", db.stmt(INSERT, &args)?).await?;
    Ok(super::returned_a_row(Some(&result)))
}

/// One page of the user's memories, newest first (`fetch` rows), to batch with others.
pub fn list_statement(
    db: &Db,
    user_id: &str,
    after: Option<&Cursor>,
    fetch: u32,
) -> Result<D1PreparedStatement, AppError> {
    match after {
        None => db.stmt(LIST_FIRST, &[text(user_id), num(fetch.into())]),
        Some(c) => db.stmt(LIST_AFTER, &[text(user_id), signed(c.key), text(&c.id), num(fetch.into())]),
    }
}

/// The user's memories matching `fts` (from `search::fts_query`), best first.
pub async fn search(db: &Db, user_id: &str, fts: &str, fetch: u32, offset: u64) -> Result<Vec<Memory>, AppError> {
    db.all("search memories", search_statement(db, user_id, fts, fetch, offset)?).await
}

/// The user's `k` memories most relevant to a message, best first (`fts` from
/// `search::fts_any_query`): what a chat turn tells the model about the user.
pub async fn relevant(db: &Db, user_id: &str, fts: &str, k: u32) -> Result<Vec<Memory>, AppError> {
    search(db, user_id, fts, k, 0).await
}

/// The query behind [`search`], to batch with others.
pub fn search_statement(
    db: &Db,
    user_id: &str,
    fts: &str,
    fetch: u32,
    offset: u64,
) -> Result<D1PreparedStatement, AppError> {
    db.stmt(SEARCH, &[text(user_id), text(fts), num(fetch.into()), num(offset)])
}

/// Memories a batched statement returned.
pub fn memories(result: Option<&D1Result>) -> Result<Vec<Memory>, AppError> {
    rows("memories", result)
}

/// False when the user has no such memory.
pub async fn delete(db: &Db, memory_id: &str, user_id: &str) -> Result<bool, AppError> {
    let result = db.query("delete memory", db.stmt(DELETE, &[text(memory_id), text(user_id)])?).await?;
    Ok(result.has_rows())
}
