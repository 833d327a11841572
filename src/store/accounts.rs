//! Users, sessions (refresh-token families) and refresh tokens in D1.

use super::{num, opt_text, text, Db};
use crate::http::AppError;
use crate::store::D1PreparedStatement;
pub use edgechat_core::accounts::{LoginRow, RefreshRow};
use edgechat_core::accounts::{Role, User};

const INSERT_USER: &str =
    "INSERT INTO users (user_id, email, display_name, password_hash, role, plan, is_disabled, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'free', 0, ?6, ?6)";
const INSERT_SESSION: &str = "INSERT INTO sessions (session_id, user_id, created_at) VALUES (?1, ?2, ?3)";
const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (refresh_token_hash, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
const SELECT_LOGIN: &str = "SELECT u.user_id, u.password_hash, u.is_disabled FROM users u WHERE u.email = ?1";
const UPDATE_PASSWORD_HASH: &str = "UPDATE users SET password_hash = ?2 WHERE user_id = ?1";
const SELECT_LIVE_SESSION_USER: &str = "SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, \
     u.created_at, u.updated_at, u.cache_version \
     FROM sessions s JOIN users u ON u.user_id = s.user_id \
     WHERE s.session_id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND u.is_disabled = 0";
const SELECT_REFRESH: &str = "SELECT rt.session_id, rt.used_at, rt.expires_at, s.user_id, s.revoked_at, u.is_disabled \
     FROM refresh_tokens rt JOIN sessions s ON s.session_id = rt.session_id JOIN users u ON u.user_id = s.user_id \
     WHERE rt.refresh_token_hash = ?1";
const MARK_REFRESH_USED: &str = "UPDATE refresh_tokens SET used_at = ?2, replaced_by_hash = ?3 \
     WHERE refresh_token_hash = ?1 AND used_at IS NULL RETURNING refresh_token_hash";
// Inserted only if this request's mark above won the race, in the same transaction.
const INSERT_ROTATED_REFRESH: &str = "INSERT INTO refresh_tokens (refresh_token_hash, session_id, created_at, expires_at) \
     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE refresh_token_hash = ?5 AND replaced_by_hash = ?1)";
const REVOKE_SESSION: &str = "UPDATE sessions SET revoked_at = ?2 WHERE session_id = ?1 AND revoked_at IS NULL";
const REVOKE_OTHER_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = ?3 WHERE user_id = ?1 AND session_id != ?2 AND revoked_at IS NULL";
const UPDATE_DISPLAY_NAME: &str = "UPDATE users SET display_name = ?2, updated_at = ?3 WHERE user_id = ?1";
const UPDATE_PASSWORD: &str = "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE user_id = ?1";
// The login row's columns, so both reads decode as one row type.
const SELECT_PASSWORD_HASH: &str = "SELECT u.user_id, u.password_hash, u.is_disabled FROM users u WHERE u.user_id = ?1";
const SELECT_USER: &str = "SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, \
     u.created_at, u.updated_at, u.cache_version FROM users u WHERE u.user_id = ?1";
const DELETE_USER_REFRESH_TOKENS: &str =
    "DELETE FROM refresh_tokens WHERE session_id IN (SELECT session_id FROM sessions WHERE user_id = ?1)";
const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = ?1";
const DELETE_USER_API_KEYS: &str = "DELETE FROM api_keys WHERE user_id = ?1";
const DELETE_USER: &str = "DELETE FROM users WHERE user_id = ?1";

/// A new user with their first session and refresh token.
pub struct NewAccount<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
    pub now: u64,
}

/// A session to open: its id, user and first refresh token (hash and expiry).
pub struct NewSession<'a> {
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub refresh_hash: &'a str,
    pub refresh_expires_at: u64,
    pub now: u64,
}

impl<'a> NewSession<'a> {
    /// A session whose first refresh token lives `ttl_seconds` from `now`.
    pub fn new(session_id: &'a str, user_id: &'a str, refresh_hash: &'a str, now: u64, ttl_seconds: u64) -> Self {
        Self { session_id, user_id, refresh_hash, refresh_expires_at: now + ttl_seconds * 1000, now }
    }
}

fn session_statements(db: &Db, s: &NewSession<'_>) -> Result<Vec<D1PreparedStatement>, AppError> {
    Ok(vec![
        db.stmt(INSERT_SESSION, &[text(s.session_id), text(s.user_id), num(s.now)])?,
        db.stmt(
            INSERT_REFRESH_TOKEN,
            &[text(s.refresh_hash), text(s.session_id), num(s.now), num(s.refresh_expires_at)],
        )?,
    ])
}

/// Creates the user and their first session atomically. A duplicate email fails with a
/// UNIQUE violation on `users.email` (see [`super::is_unique_violation`]).
pub async fn create_account(db: &Db, a: &NewAccount<'_>, session: &NewSession<'_>) -> Result<(), AppError> {
    let args = [
        text(a.user_id),
        text(a.email),
        opt_text(a.display_name),
        text(a.password_hash),
        text(a.role.as_str()),
        num(a.now),
    ];
    let mut statements = vec![db.stmt(INSERT_USER, &args)?];
    statements.extend(session_statements(db, session)?);
    db.batch("create account", statements).await.map(drop)
}

pub async fn open_session(db: &Db, session: &NewSession<'_>) -> Result<(), AppError> {
    db.batch("open session", session_statements(db, session)?).await.map(drop)
}

pub async fn find_login(db: &Db, email: &str) -> Result<Option<LoginRow>, AppError> {
    db.first("find login", db.stmt(SELECT_LOGIN, &[text(email)])?).await
}

pub async fn set_password_hash(db: &Db, user_id: &str, hash: &str) -> Result<(), AppError> {
    db.run("rehash", db.stmt(UPDATE_PASSWORD_HASH, &[text(user_id), text(hash)])?).await.map(drop)
}

/// The session's user (a [`User`] row), when the session is live and the user enabled: the
/// per-request liveness check behind every access token (one primary-key lookup).
pub fn live_session_user_statement(db: &Db, session_id: &str, user_id: &str) -> Result<D1PreparedStatement, AppError> {
    db.stmt(SELECT_LIVE_SESSION_USER, &[text(session_id), text(user_id)])
}

pub async fn find_user(db: &Db, user_id: &str) -> Result<Option<User>, AppError> {
    db.first("find user", db.stmt(SELECT_USER, &[text(user_id)])?).await
}

pub async fn find_refresh(db: &Db, refresh_hash: &str) -> Result<Option<RefreshRow>, AppError> {
    db.first("find refresh token", db.stmt(SELECT_REFRESH, &[text(refresh_hash)])?).await
}

/// Marks `old_hash` used and stores `new_hash` in one transaction. False when another
/// request used `old_hash` first (the caller treats that as reuse).
pub async fn rotate_refresh(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    session_id: &str,
    now: u64,
    expires_at: u64,
) -> Result<bool, AppError> {
    let statements = vec![
        db.stmt(MARK_REFRESH_USED, &[text(old_hash), num(now), text(new_hash)])?,
        db.stmt(
            INSERT_ROTATED_REFRESH,
            &[text(new_hash), text(session_id), num(now), num(expires_at), text(old_hash)],
        )?,
    ];
    let results = db.batch("rotate refresh token", statements).await?;
    // The row comes back only to the request whose mark won: the check is the statement itself.
    Ok(super::returned_a_row(results.first()))
}

pub async fn revoke_session(db: &Db, session_id: &str, now: u64) -> Result<(), AppError> {
    db.run("revoke session", db.stmt(REVOKE_SESSION, &[text(session_id), num(now)])?).await.map(drop)
}

pub async fn update_display_name(db: &Db, user_id: &str, name: Option<&str>, now: u64) -> Result<(), AppError> {
    let stmt = db.stmt(UPDATE_DISPLAY_NAME, &[text(user_id), opt_text(name), num(now)])?;
    db.run("update display name", stmt).await.map(drop)
}

pub async fn password_hash(db: &Db, user_id: &str) -> Result<Option<String>, AppError> {
    let row: Option<LoginRow> =
        db.first("read password hash", db.stmt(SELECT_PASSWORD_HASH, &[text(user_id)])?).await?;
    Ok(row.map(|r| r.password_hash))
}

/// Sets a new password and revokes every session but `keep_session_id`, atomically.
pub async fn change_password(
    db: &Db,
    user_id: &str,
    hash: &str,
    keep_session_id: &str,
    now: u64,
) -> Result<(), AppError> {
    let statements = vec![
        db.stmt(UPDATE_PASSWORD, &[text(user_id), text(hash), num(now)])?,
        db.stmt(REVOKE_OTHER_SESSIONS, &[text(user_id), text(keep_session_id), num(now)])?,
    ];
    db.batch("change password", statements).await.map(drop)
}

/// Deletes the user and everything they own in one transaction.
pub async fn delete_account(db: &Db, user_id: &str) -> Result<(), AppError> {
    let owned =
        super::conversations::DELETE_ALL_OF_USER.iter().chain(super::quotas::DELETE_ALL_OF_USER).copied().chain([
            super::usage::DELETE_ALL_OF_USER,
            super::tasks::DELETE_ALL_OF_USER,
            super::memories::DELETE_ALL_OF_USER,
        ]);
    let mut statements = Vec::new();
    for sql in owned.chain([DELETE_USER_API_KEYS, DELETE_USER_REFRESH_TOKENS, DELETE_USER_SESSIONS, DELETE_USER]) {
        statements.push(db.stmt(sql, &[text(user_id)])?);
    }
    db.batch("delete account", statements).await.map(drop)
}
