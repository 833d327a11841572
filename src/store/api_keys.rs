//! API keys in D1: stored as hashes, listed by prefix, revoked by timestamp.

use super::{changes, failed, num, stmt, text};
use crate::http::AppError;
use edgechat_core::accounts::{ApiKey, User};
use serde::Deserialize;
use worker::D1Database;

/// Most live keys one user may hold (the list endpoint returns them in one page).
pub const MAX_KEYS_PER_USER: u64 = 100;

const INSERT_KEY: &str =
    "INSERT INTO api_keys (api_key_id, user_id, name, key_prefix, key_hash, created_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
     WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2 AND revoked_at IS NULL) < ?7";
const LIST_KEYS: &str =
    "SELECT api_key_id, name, key_prefix, created_at, last_used_at FROM api_keys \
     WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY created_at DESC, api_key_id DESC";
const REVOKE_KEY: &str =
    "UPDATE api_keys SET revoked_at = ?3 WHERE api_key_id = ?1 AND user_id = ?2 AND revoked_at IS NULL";
const SELECT_KEY_USER: &str = "SELECT k.api_key_id, k.last_used_at, \
     u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, u.created_at, u.updated_at \
     FROM api_keys k JOIN users u ON u.user_id = k.user_id \
     WHERE k.key_hash = ?1 AND k.revoked_at IS NULL AND u.is_disabled = 0";
const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = ?2 WHERE api_key_id = ?1";

pub struct NewKey<'a> {
    pub api_key_id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
    pub now: u64,
}

/// Stores a key; false when the user already holds [`MAX_KEYS_PER_USER`] live keys.
pub async fn create(db: &D1Database, k: &NewKey<'_>) -> Result<bool, AppError> {
    let result = stmt(
        db,
        INSERT_KEY,
        &[
            text(k.api_key_id),
            text(k.user_id),
            text(k.name),
            text(k.key_prefix),
            text(k.key_hash),
            num(k.now),
            num(MAX_KEYS_PER_USER),
        ],
    )?
    .run()
    .await
    .map_err(failed("create api key"))?;
    Ok(changes(&result) == 1)
}

pub async fn list(db: &D1Database, user_id: &str) -> Result<Vec<ApiKey>, AppError> {
    stmt(db, LIST_KEYS, &[text(user_id)])?
        .all()
        .await
        .and_then(|r| r.results())
        .map_err(failed("list api keys"))
}

/// Revokes the user's key; false when no such live key of theirs exists.
pub async fn revoke(
    db: &D1Database,
    api_key_id: &str,
    user_id: &str,
    now: u64,
) -> Result<bool, AppError> {
    let result = stmt(db, REVOKE_KEY, &[text(api_key_id), text(user_id), num(now)])?
        .run()
        .await
        .map_err(failed("revoke api key"))?;
    Ok(changes(&result) == 1)
}

#[derive(Deserialize)]
pub struct KeyUser {
    pub api_key_id: String,
    pub last_used_at: Option<u64>,
    #[serde(flatten)]
    pub user: User,
}

/// The live key with this hash and its enabled owner.
pub async fn find_by_hash(db: &D1Database, key_hash: &str) -> Result<Option<KeyUser>, AppError> {
    stmt(db, SELECT_KEY_USER, &[text(key_hash)])?
        .first(None)
        .await
        .map_err(failed("find api key"))
}

pub async fn touch(db: &D1Database, api_key_id: &str, now: u64) -> Result<(), AppError> {
    stmt(db, TOUCH_KEY, &[text(api_key_id), num(now)])?
        .run()
        .await
        .map(drop)
        .map_err(failed("touch api key"))
}
