//! Login-attempt counters in D1: one atomic upsert per key per attempt, so concurrent
//! attempts are counted exactly.

use super::{num, rows, text, Db};
use crate::http::AppError;
pub use edgechat_core::throttle::Counter;

// SET expressions see the row's old values, so both CASEs test the same old window start.
const COUNT_ATTEMPT: &str =
    "INSERT INTO login_attempts (attempt_key, attempt_count, window_started_at) VALUES (?1, 1, ?2) \
     ON CONFLICT (attempt_key) DO UPDATE SET \
     attempt_count = CASE WHEN window_started_at < ?3 THEN 1 ELSE attempt_count + 1 END, \
     window_started_at = CASE WHEN window_started_at < ?3 THEN ?2 ELSE window_started_at END \
     RETURNING attempt_count, window_started_at";
const CLEAR_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE attempt_key = ?1";
const FORGIVE_ATTEMPT: &str =
    "UPDATE login_attempts SET attempt_count = MAX(attempt_count - 1, 0) WHERE attempt_key = ?1";

/// Counts one attempt under each key (in one transaction) and returns the counters after it.
pub async fn count_attempt(db: &Db, keys: &[&str], now: u64, cutoff: u64) -> Result<Vec<Counter>, AppError> {
    let mut statements = Vec::new();
    for key in keys {
        statements.push(db.stmt(COUNT_ATTEMPT, &[text(key), num(now), num(cutoff)])?);
    }
    let results = db.batch("count login attempt", statements).await?;
    let mut counters = Vec::new();
    for r in results {
        let mut returned: Vec<Counter> = rows("count login attempt", Some(&r))?;
        counters.push(returned.pop().ok_or_else(|| AppError::platform("count login attempt", "no row returned"))?);
    }
    Ok(counters)
}

/// After a successful login: clear the email's counter and take this attempt off the IP's.
pub async fn forgive(db: &Db, email_key: &str, ip_key: &str) -> Result<(), AppError> {
    db.batch(
        "forgive login attempt",
        vec![db.stmt(CLEAR_ATTEMPTS, &[text(email_key)])?, db.stmt(FORGIVE_ATTEMPT, &[text(ip_key)])?],
    )
    .await
    .map(drop)
}
