//! Idempotency keys in D1 (migration 0017): which turn a user's keyed send started, read and
//! written for their owner only.

use super::{num, text, Db};
use crate::http::AppError;
use crate::store::D1PreparedStatement;
use serde::Deserialize;

const FIND: &str = "SELECT fingerprint, assistant_message_id FROM idempotency_keys \
     WHERE user_id = ?1 AND idempotency_key = ?2 AND created_at >= ?3";
// The user's expired keys go first, so that an expired key can be used again.
const DELETE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE user_id = ?1 AND created_at < ?2";
// Only if the turn's answer was stored in the same batch (then the turn was admitted).
const INSERT: &str = "INSERT INTO idempotency_keys \
     (user_id, idempotency_key, fingerprint, conversation_id, assistant_message_id, created_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM messages WHERE message_id = ?5 AND user_id = ?1)";

/// The turn a key started.
#[derive(Debug, Deserialize)]
pub struct Keyed {
    pub fingerprint: String,
    pub assistant_message_id: String,
}

/// The user's live record of `key` (made after `since`), if any.
pub async fn find(db: &Db, user_id: &str, key: &str, since: u64) -> Result<Option<Keyed>, AppError> {
    db.first("read idempotency key", db.stmt(FIND, &[text(user_id), text(key), num(since)])?).await
}

/// A new key's record.
pub struct NewKey<'a> {
    pub user_id: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub conversation_id: &'a str,
    pub assistant_message_id: &'a str,
    pub now: u64,
    /// Keys made before this have expired.
    pub expired_before: u64,
}

/// The statements that record `k`, to follow the turn's in its batch. A second live record of
/// the same key fails the whole batch (a UNIQUE violation: see [`is_taken`]).
pub fn record_statements(db: &Db, k: &NewKey<'_>) -> Result<Vec<D1PreparedStatement>, AppError> {
    Ok(vec![
        db.stmt(DELETE_EXPIRED, &[text(k.user_id), num(k.expired_before)])?,
        db.stmt(
            INSERT,
            &[
                text(k.user_id),
                text(k.key),
                text(k.fingerprint),
                text(k.conversation_id),
                text(k.assistant_message_id),
                num(k.now),
            ],
        )?,
    ])
}

/// True when a batch failed because the key was recorded by another request meanwhile.
pub fn is_taken(err: &AppError) -> bool {
    super::is_unique_violation(err, "idempotency_keys")
}
