//! API keys in D1: stored as hashes, listed by prefix, revoked by timestamp.

use super::{num, text, Db, SqlArg};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::accounts::ApiKey;
pub use edgechat_core::accounts::KeyUser;

/// Most live keys one user may hold (the list endpoint returns them in one page).
pub const MAX_KEYS_PER_USER: u64 = 100;

const INSERT_KEY: &str =
    "INSERT INTO api_keys (api_key_id, user_id, name, key_prefix, key_hash, created_at, scopes, expires_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?8, ?9 \
     WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2 AND revoked_at IS NULL) < ?7";
const LIST_KEYS: &str =
    "SELECT api_key_id, name, key_prefix, scopes, created_at, expires_at, last_used_at FROM api_keys \
     WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY created_at DESC, api_key_id DESC";
const REVOKE_KEY: &str =
    "UPDATE api_keys SET revoked_at = ?3 WHERE api_key_id = ?1 AND user_id = ?2 AND revoked_at IS NULL";
// An expired key is treated as a revoked one: not found.
const SELECT_KEY_USER: &str = "SELECT k.api_key_id, k.last_used_at, k.scopes, \
     u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, u.created_at, u.updated_at, u.cache_version \
     FROM api_keys k JOIN users u ON u.user_id = k.user_id \
     WHERE k.key_hash = ?1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?2) \
     AND u.is_disabled = 0";
const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = ?2 WHERE api_key_id = ?1";

pub struct NewKey<'a> {
    pub api_key_id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
    /// The stored form of the key's scopes ([`edgechat_core::scopes::Scopes::to_column`]).
    pub scopes: &'a str,
    pub expires_at: Option<u64>,
    pub now: u64,
}

/// Stores a key; false when the user already holds [`MAX_KEYS_PER_USER`] live keys.
pub async fn create(db: &Db, k: &NewKey<'_>) -> Result<bool, AppError> {
    let args = [
        text(k.api_key_id),
        text(k.user_id),
        text(k.name),
        text(k.key_prefix),
        text(k.key_hash),
        num(k.now),
        num(MAX_KEYS_PER_USER),
        text(k.scopes),
        k.expires_at.map_or(SqlArg::Null, num),
    ];
    Ok(db.run("create api key", db.stmt(INSERT_KEY, &args)?).await? == 1)
}

/// The user's live API keys, newest first, to batch with the session check.
pub fn list_statement(db: &Db, user_id: &str) -> Result<D1PreparedStatement, AppError> {
    db.stmt(LIST_KEYS, &[text(user_id)])
}

/// The keys [`list_statement`] returned.
pub fn keys(result: Option<&D1Result>) -> Result<Vec<ApiKey>, AppError> {
    super::rows("list api keys", result)
}

/// Revokes the user's key; false when no such live key of theirs exists.
pub async fn revoke(db: &Db, api_key_id: &str, user_id: &str, now: u64) -> Result<bool, AppError> {
    let stmt = db.stmt(REVOKE_KEY, &[text(api_key_id), text(user_id), num(now)])?;
    Ok(db.run("revoke api key", stmt).await? == 1)
}

/// The live, unexpired key with this hash and its enabled owner (decoded as [`KeyUser`]).
pub fn find_by_hash_statement(db: &Db, key_hash: &str, now: u64) -> Result<D1PreparedStatement, AppError> {
    db.stmt(SELECT_KEY_USER, &[text(key_hash), num(now)])
}

pub async fn touch(db: &Db, api_key_id: &str, now: u64) -> Result<(), AppError> {
    db.run("touch api key", db.stmt(TOUCH_KEY, &[text(api_key_id), num(now)])?).await.map(drop)
}
