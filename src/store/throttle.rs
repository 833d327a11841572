//! Login and registration counters in D1: one atomic upsert per key per attempt, so
//! concurrent attempts are counted exactly.

use super::{num, rows, text, Db};
use crate::http::AppError;
use crate::store::D1Result;
pub use edgechat_core::throttle::{Counter, EmailFailures, LoginCounts};

// SET expressions see the row's old values, so both CASEs test the same old window start.
const COUNT_ATTEMPT: &str =
    "INSERT INTO login_attempts (attempt_key, attempt_count, window_started_at) VALUES (?1, 1, ?2) \
     ON CONFLICT (attempt_key) DO UPDATE SET \
     attempt_count = CASE WHEN window_started_at < ?3 THEN 1 ELSE attempt_count + 1 END, \
     window_started_at = CASE WHEN window_started_at < ?3 THEN ?2 ELSE window_started_at END \
     RETURNING attempt_count, window_started_at";
const EMAIL_FAILURES: &str =
    "SELECT attempt_count, window_started_at, last_failure_at FROM login_attempts WHERE attempt_key = ?1";
const COUNT_EMAIL_FAILURE: &str =
    "INSERT INTO login_attempts (attempt_key, attempt_count, window_started_at, last_failure_at) \
     VALUES (?1, 1, ?2, ?2) ON CONFLICT (attempt_key) DO UPDATE SET \
     attempt_count = CASE WHEN window_started_at < ?3 THEN 1 ELSE attempt_count + 1 END, \
     window_started_at = CASE WHEN window_started_at < ?3 THEN ?2 ELSE window_started_at END, \
     last_failure_at = ?2";
const CLEAR_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE attempt_key = ?1";
const FORGIVE_ATTEMPT: &str =
    "UPDATE login_attempts SET attempt_count = MAX(attempt_count - 1, 0) WHERE attempt_key = ?1";

/// The login counter keys of one attempt.
pub struct LoginKeys<'a> {
    pub ip: &'a str,
    pub email_ip: &'a str,
    pub email: &'a str,
}

fn counted(result: Option<&D1Result>) -> Result<Counter, AppError> {
    let mut returned: Vec<Counter> = rows("count attempt", result)?;
    returned.pop().ok_or_else(|| AppError::platform("count attempt", "no row returned"))
}

/// Counts one login attempt under the address's and the (email, address) keys and reads the
/// email's failures, in one transaction (`cutoff`: windows that started before it restart).
pub async fn count_login(db: &Db, keys: &LoginKeys<'_>, now: u64, cutoff: u64) -> Result<LoginCounts, AppError> {
    let statements = vec![
        db.stmt(COUNT_ATTEMPT, &[text(keys.ip), num(now), num(cutoff)])?,
        db.stmt(COUNT_ATTEMPT, &[text(keys.email_ip), num(now), num(cutoff)])?,
        db.stmt(EMAIL_FAILURES, &[text(keys.email)])?,
    ];
    let results = db.batch("count login attempt", statements).await?;
    let email: Vec<EmailFailures> = rows("email failures", results.get(2))?;
    Ok(LoginCounts {
        ip: counted(results.first())?,
        email_ip: counted(results.get(1))?,
        email: email.into_iter().next(),
    })
}

/// A wrong password: one more failure for the email, from its last failure on.
pub async fn count_email_failure(db: &Db, email_key: &str, now: u64, cutoff: u64) -> Result<(), AppError> {
    db.run("count email failure", db.stmt(COUNT_EMAIL_FAILURE, &[text(email_key), num(now), num(cutoff)])?)
        .await
        .map(drop)
}

/// An attempt refused before its password was checked, by a wait: not held against the
/// (email, address) count.
pub async fn forgive_waiting(db: &Db, email_ip_key: &str) -> Result<(), AppError> {
    db.run("forgive waiting attempt", db.stmt(FORGIVE_ATTEMPT, &[text(email_ip_key)])?).await.map(drop)
}

/// After a successful login: clear the (email, address) counter and take this attempt off
/// the address's. The email's failures stay: a success elsewhere does not end an attack.
pub async fn forgive(db: &Db, email_ip_key: &str, ip_key: &str) -> Result<(), AppError> {
    db.batch(
        "forgive login attempt",
        vec![db.stmt(CLEAR_ATTEMPTS, &[text(email_ip_key)])?, db.stmt(FORGIVE_ATTEMPT, &[text(ip_key)])?],
    )
    .await
    .map(drop)
}

/// Counts one registration attempt from an address.
pub async fn count_registration(db: &Db, key: &str, now: u64, cutoff: u64) -> Result<Counter, AppError> {
    let result = db.query("count registration", db.stmt(COUNT_ATTEMPT, &[text(key), num(now), num(cutoff)])?).await?;
    counted(Some(&result))
}
