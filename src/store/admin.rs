//! The admin API's reads and writes: user search, user changes with their audit rows,
//! usage aggregates, and the webhook and audit logs.

use super::{num, opt_text, signed, text, Db, SqlArg};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::accounts::{Role, User};
use edgechat_core::admin::UsageGroup;
pub use edgechat_core::admin::{AuditRow, UsageRow, UserUsageRow, WebhookEvent};
use edgechat_core::cursor::Cursor;

const LIST_USERS: &str = "SELECT user_id, email, display_name, role, plan, is_disabled, created_at, updated_at, cache_version \
     FROM users WHERE email LIKE ?1 ESCAPE '\\' AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND user_id < ?3)) \
     ORDER BY created_at DESC, user_id DESC LIMIT ?4";
const UPDATE_USER: &str = "UPDATE users SET role = COALESCE(?2, role), plan = COALESCE(?3, plan), \
     is_disabled = COALESCE(?4, is_disabled), updated_at = ?5 WHERE user_id = ?1 RETURNING user_id";
const REVOKE_SESSIONS: &str = "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL";
const INSERT_AUDIT: &str =
    "INSERT INTO admin_audit (admin_audit_id, admin_user_id, target_user_id, action, detail, created_at) \
     SELECT ?1, ?2, ?3, 'update_user', ?4, ?5 WHERE EXISTS (SELECT 1 FROM users WHERE user_id = ?3)";
const USAGE_BY_DAY: &str = "SELECT strftime('%Y-%m-%d', created_at / 1000, 'unixepoch') AS key, COUNT(*) AS requests, \
     SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens FROM usage_records \
     WHERE created_at >= ?1 GROUP BY key ORDER BY key DESC";
const USAGE_BY_MODEL: &str = "SELECT model AS key, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
     SUM(completion_tokens) AS completion_tokens FROM usage_records WHERE created_at >= ?1 GROUP BY key ORDER BY requests DESC, key";
const USAGE_BY_USER: &str = "SELECT user_id AS key, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
     SUM(completion_tokens) AS completion_tokens FROM usage_records WHERE created_at >= ?1 GROUP BY key ORDER BY requests DESC, key";
const USER_USAGE: &str =
    "SELECT strftime('%Y-%m-%d', created_at / 1000, 'unixepoch') AS day, model, COUNT(*) AS requests, \
     SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens FROM usage_records \
     WHERE user_id = ?1 AND created_at >= ?2 GROUP BY day, model ORDER BY day DESC, model";
const WEBHOOK_EVENTS: &str = "SELECT webhook_event_id, source, event_type, event_created_at, outcome, received_at \
     FROM webhook_events WHERE (?1 IS NULL OR received_at < ?1 OR (received_at = ?1 AND webhook_event_id < ?2)) \
     ORDER BY received_at DESC, webhook_event_id DESC LIMIT ?3";
const AUDIT: &str =
    "SELECT admin_audit_id, admin_user_id, target_user_id, action, detail, created_at FROM admin_audit \
     WHERE (?1 IS NULL OR created_at < ?1 OR (created_at = ?1 AND admin_audit_id < ?2)) \
     ORDER BY created_at DESC, admin_audit_id DESC LIMIT ?3";

fn after(c: Option<&Cursor>) -> [SqlArg<'_>; 2] {
    match c {
        Some(c) => [signed(c.key), text(&c.id)],
        None => [SqlArg::Null, SqlArg::Null],
    }
}

pub async fn list_users(db: &Db, like: &str, cursor: Option<&Cursor>, fetch: u32) -> Result<Vec<User>, AppError> {
    let [k, id] = after(cursor);
    db.all("admin list users", db.stmt(LIST_USERS, &[text(like), k, id, num(fetch.into())])?).await
}

pub struct UserChange<'a> {
    pub role: Option<Role>,
    pub plan: Option<&'a str>,
    pub is_disabled: Option<bool>,
}

/// Applies the change, writes its audit row and, when disabling, revokes every session, in
/// one transaction. False when there is no such user.
pub async fn update_user(
    db: &Db,
    admin_user_id: &str,
    target_user_id: &str,
    change: &UserChange<'_>,
    audit_id: &str,
    detail: &str,
    now: u64,
) -> Result<bool, AppError> {
    let disabled = change.is_disabled.map_or(SqlArg::Null, |d| num(u64::from(d)));
    let mut statements = vec![
        db.stmt(
            UPDATE_USER,
            &[text(target_user_id), opt_text(change.role.map(Role::as_str)), opt_text(change.plan), disabled, num(now)],
        )?,
        db.stmt(INSERT_AUDIT, &[text(audit_id), text(admin_user_id), text(target_user_id), text(detail), num(now)])?,
    ];
    if change.is_disabled == Some(true) {
        statements.push(db.stmt(REVOKE_SESSIONS, &[text(target_user_id), num(now)])?);
    }
    let results = db.batch("admin update user", statements).await?;
    Ok(super::returned_a_row(results.first()))
}

pub async fn usage(db: &Db, group: UsageGroup, since: u64) -> Result<Vec<UsageRow>, AppError> {
    let sql = match group {
        UsageGroup::Day => USAGE_BY_DAY,
        UsageGroup::Model => USAGE_BY_MODEL,
        UsageGroup::User => USAGE_BY_USER,
    };
    db.all("admin usage", db.stmt(sql, &[num(since)])?).await
}

/// A user's calls since `since` (epoch ms) by day and model, to batch with the session check.
pub fn user_usage_statement(db: &Db, user_id: &str, since: u64) -> Result<D1PreparedStatement, AppError> {
    db.stmt(USER_USAGE, &[text(user_id), num(since)])
}

/// The rows [`user_usage_statement`] returned.
pub fn user_usage(result: Option<&D1Result>) -> Result<Vec<UserUsageRow>, AppError> {
    super::rows("user usage", result)
}

pub async fn webhook_events(db: &Db, cursor: Option<&Cursor>, fetch: u32) -> Result<Vec<WebhookEvent>, AppError> {
    let [k, id] = after(cursor);
    db.all("webhook events", db.stmt(WEBHOOK_EVENTS, &[k, id, num(fetch.into())])?).await
}

pub async fn audit(db: &Db, cursor: Option<&Cursor>, fetch: u32) -> Result<Vec<AuditRow>, AppError> {
    let [k, id] = after(cursor);
    db.all("admin audit", db.stmt(AUDIT, &[k, id, num(fetch.into())])?).await
}
