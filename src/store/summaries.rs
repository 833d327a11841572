//! Summaries in D1: the summary of a branch's older part, keyed by the last message it covers
//! (migration 0016), read and written for their owner only.

use super::{num, text, Db};
use crate::http::AppError;
use edgechat_core::llm::context::StoredSummary;

// The branch's message ids come as one JSON array (at most the conversation's message cap).
const ON_PATH: &str = "SELECT message_id, content FROM summaries \
     WHERE user_id = ?1 AND message_id IN (SELECT value FROM json_each(?2))";
// Only through a message of the owner's; a summary through a message is written once (two turns
// that made the same one at once keep the first).
const INSERT: &str = "INSERT INTO summaries (message_id, user_id, content, model, created_at) \
     SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM messages WHERE message_id = ?1 AND user_id = ?2) \
     ON CONFLICT (message_id) DO NOTHING";

/// The user's summaries through any of `path_ids` (a JSON array of message ids).
pub async fn on_path(db: &Db, user_id: &str, path_ids: &str) -> Result<Vec<StoredSummary>, AppError> {
    db.all("read summaries", db.stmt(ON_PATH, &[text(user_id), text(path_ids)])?).await
}

/// Stores the summary of the branch through `message_id`.
pub async fn insert(
    db: &Db,
    message_id: &str,
    user_id: &str,
    content: &str,
    model: &str,
    now: u64,
) -> Result<(), AppError> {
    let args = [text(message_id), text(user_id), text(content), text(model), num(now)];
    db.run("store summary", db.stmt(INSERT, &args)?).await.map(drop)
}
