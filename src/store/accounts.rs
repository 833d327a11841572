//! Users, sessions (refresh-token families) and refresh tokens in D1.

use super::{batch, changes, failed, num, opt_text, stmt, text};
use crate::http::AppError;
use edgechat_core::accounts::User;
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

const INSERT_USER: &str = "INSERT INTO users (user_id, email, display_name, password_hash, role, plan, is_disabled, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'free', 0, ?6, ?6)";
const INSERT_SESSION: &str =
    "INSERT INTO sessions (session_id, user_id, created_at) VALUES (?1, ?2, ?3)";
const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (refresh_token_hash, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
const SELECT_LOGIN: &str =
    "SELECT u.user_id, u.password_hash, u.is_disabled FROM users u WHERE u.email = ?1";
const UPDATE_PASSWORD_HASH: &str = "UPDATE users SET password_hash = ?2 WHERE user_id = ?1";
const SELECT_LIVE_SESSION_USER: &str = "SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, u.created_at, u.updated_at \
     FROM sessions s JOIN users u ON u.user_id = s.user_id \
     WHERE s.session_id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND u.is_disabled = 0";
const SELECT_REFRESH: &str = "SELECT rt.session_id, rt.used_at, rt.expires_at, s.user_id, s.revoked_at, u.is_disabled \
     FROM refresh_tokens rt JOIN sessions s ON s.session_id = rt.session_id JOIN users u ON u.user_id = s.user_id \
     WHERE rt.refresh_token_hash = ?1";
const MARK_REFRESH_USED: &str = "UPDATE refresh_tokens SET used_at = ?2, replaced_by_hash = ?3 \
     WHERE refresh_token_hash = ?1 AND used_at IS NULL";
// Inserted only if this request's mark above won the race, in the same transaction.
const INSERT_ROTATED_REFRESH: &str = "INSERT INTO refresh_tokens (refresh_token_hash, session_id, created_at, expires_at) \
     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE refresh_token_hash = ?5 AND replaced_by_hash = ?1)";
const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = ?2 WHERE session_id = ?1 AND revoked_at IS NULL";
const REVOKE_OTHER_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = ?3 WHERE user_id = ?1 AND session_id != ?2 AND revoked_at IS NULL";
const UPDATE_DISPLAY_NAME: &str =
    "UPDATE users SET display_name = ?2, updated_at = ?3 WHERE user_id = ?1";
const UPDATE_PASSWORD: &str =
    "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE user_id = ?1";
const SELECT_PASSWORD_HASH: &str = "SELECT password_hash FROM users WHERE user_id = ?1";
const SELECT_USER: &str = "SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, u.created_at, u.updated_at \
     FROM users u WHERE u.user_id = ?1";
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
    pub role: &'a str,
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

fn session_statements(
    db: &D1Database,
    s: &NewSession<'_>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    Ok(vec![
        stmt(
            db,
            INSERT_SESSION,
            &[text(s.session_id), text(s.user_id), num(s.now)],
        )?,
        stmt(
            db,
            INSERT_REFRESH_TOKEN,
            &[
                text(s.refresh_hash),
                text(s.session_id),
                num(s.now),
                num(s.refresh_expires_at),
            ],
        )?,
    ])
}

/// Creates the user and their first session atomically. A duplicate email fails with a
/// UNIQUE violation on `users.email` (see [`super::is_unique_violation`]).
pub async fn create_account(
    db: &D1Database,
    a: &NewAccount<'_>,
    session: &NewSession<'_>,
) -> Result<(), AppError> {
    let mut statements = vec![stmt(
        db,
        INSERT_USER,
        &[
            text(a.user_id),
            text(a.email),
            opt_text(a.display_name),
            text(a.password_hash),
            text(a.role),
            num(a.now),
        ],
    )?];
    statements.extend(session_statements(db, session)?);
    batch(db, "create account", statements).await.map(drop)
}

pub async fn open_session(db: &D1Database, session: &NewSession<'_>) -> Result<(), AppError> {
    batch(db, "open session", session_statements(db, session)?)
        .await
        .map(drop)
}

#[derive(Deserialize)]
pub struct LoginRow {
    pub user_id: String,
    pub password_hash: String,
    pub is_disabled: i64,
}

pub async fn find_login(db: &D1Database, email: &str) -> Result<Option<LoginRow>, AppError> {
    stmt(db, SELECT_LOGIN, &[text(email)])?
        .first(None)
        .await
        .map_err(failed("find login"))
}

pub async fn set_password_hash(db: &D1Database, user_id: &str, hash: &str) -> Result<(), AppError> {
    stmt(db, UPDATE_PASSWORD_HASH, &[text(user_id), text(hash)])?
        .run()
        .await
        .map(drop)
        .map_err(failed("rehash"))
}

/// The session's user, when the session is live and the user enabled: the per-request
/// liveness check behind every access token (one primary-key lookup).
pub async fn live_session_user(
    db: &D1Database,
    session_id: &str,
    user_id: &str,
) -> Result<Option<User>, AppError> {
    stmt(
        db,
        SELECT_LIVE_SESSION_USER,
        &[text(session_id), text(user_id)],
    )?
    .first(None)
    .await
    .map_err(failed("session liveness"))
}

pub async fn find_user(db: &D1Database, user_id: &str) -> Result<Option<User>, AppError> {
    stmt(db, SELECT_USER, &[text(user_id)])?
        .first(None)
        .await
        .map_err(failed("find user"))
}

#[derive(Deserialize)]
pub struct RefreshRow {
    pub session_id: String,
    pub used_at: Option<u64>,
    pub expires_at: u64,
    pub user_id: String,
    pub revoked_at: Option<u64>,
    pub is_disabled: i64,
}

pub async fn find_refresh(
    db: &D1Database,
    refresh_hash: &str,
) -> Result<Option<RefreshRow>, AppError> {
    stmt(db, SELECT_REFRESH, &[text(refresh_hash)])?
        .first(None)
        .await
        .map_err(failed("find refresh token"))
}

/// Marks `old_hash` used and stores `new_hash` in one transaction. False when another
/// request used `old_hash` first (the caller treats that as reuse).
pub async fn rotate_refresh(
    db: &D1Database,
    old_hash: &str,
    new_hash: &str,
    session_id: &str,
    now: u64,
    expires_at: u64,
) -> Result<bool, AppError> {
    let results = batch(
        db,
        "rotate refresh token",
        vec![
            stmt(
                db,
                MARK_REFRESH_USED,
                &[text(old_hash), num(now), text(new_hash)],
            )?,
            stmt(
                db,
                INSERT_ROTATED_REFRESH,
                &[
                    text(new_hash),
                    text(session_id),
                    num(now),
                    num(expires_at),
                    text(old_hash),
                ],
            )?,
        ],
    )
    .await?;
    Ok(results.first().map(changes) == Some(1))
}

pub async fn revoke_session(db: &D1Database, session_id: &str, now: u64) -> Result<(), AppError> {
    stmt(db, REVOKE_SESSION, &[text(session_id), num(now)])?
        .run()
        .await
        .map(drop)
        .map_err(failed("revoke session"))
}

pub async fn update_display_name(
    db: &D1Database,
    user_id: &str,
    name: Option<&str>,
    now: u64,
) -> Result<(), AppError> {
    stmt(
        db,
        UPDATE_DISPLAY_NAME,
        &[text(user_id), opt_text(name), num(now)],
    )?
    .run()
    .await
    .map(drop)
    .map_err(failed("update display name"))
}

pub async fn password_hash(db: &D1Database, user_id: &str) -> Result<Option<String>, AppError> {
    stmt(db, SELECT_PASSWORD_HASH, &[text(user_id)])?
        .first(Some("password_hash"))
        .await
        .map_err(failed("read password hash"))
}

/// Sets a new password and revokes every session but `keep_session_id`, atomically.
pub async fn change_password(
    db: &D1Database,
    user_id: &str,
    hash: &str,
    keep_session_id: &str,
    now: u64,
) -> Result<(), AppError> {
    batch(
        db,
        "change password",
        vec![
            stmt(db, UPDATE_PASSWORD, &[text(user_id), text(hash), num(now)])?,
            stmt(
                db,
                REVOKE_OTHER_SESSIONS,
                &[text(user_id), text(keep_session_id), num(now)],
            )?,
        ],
    )
    .await
    .map(drop)
}

/// Deletes the user and everything they own in one transaction.
pub async fn delete_account(
    db: &D1Database,
    user_id: &str,
    owned: Vec<&str>,
) -> Result<(), AppError> {
    let mut statements = Vec::new();
    for sql in owned.into_iter().chain([
        DELETE_USER_API_KEYS,
        DELETE_USER_REFRESH_TOKENS,
        DELETE_USER_SESSIONS,
        DELETE_USER,
    ]) {
        statements.push(stmt(db, sql, &[text(user_id)])?);
    }
    batch(db, "delete account", statements).await.map(drop)
}
