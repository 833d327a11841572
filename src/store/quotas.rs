//! Exact counters in D1 for plan limits: requests per minute, tokens per day, concurrent
//! streams. Each check-and-count is a conditional statement, so concurrent requests can never
//! both take the last unit (D1 runs statements one at a time); a request's minute and day are
//! counted in one batch.

use super::{num, opt_text, returned_a_row, rows, text, Db};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::plans::{Counts, DayTokens, RequestCount};

// Every request counts in its minute; it is admitted when its count is within the limit.
const HIT_RATE_WINDOW: &str = "INSERT INTO rate_windows (user_id, window_start, request_count) VALUES (?1, ?2, 1) \
     ON CONFLICT (user_id, window_start) DO UPDATE SET request_count = request_count + 1 RETURNING request_count";
const FORGET_OLD_WINDOWS: &str = "DELETE FROM rate_windows WHERE user_id = ?1 AND window_start < ?2";
// Runs right after HIT_RATE_WINDOW in the same batch: only a request admitted by the minute
// (?5 window, ?6 limit) reserves, and only while the day's total is under the budget,
// counting the request's estimate at once (at most one request's worth goes past it). The
// reservation is marked with ?7, the call's id when later statements of the batch ask
// whether it happened (see TURN_ADMITTED in messages.rs), else NULL.
const RESERVE_TOKENS: &str = "INSERT INTO daily_tokens (user_id, day, tokens, last_reservation) SELECT ?1, ?2, ?3, ?7 \
     WHERE (SELECT request_count FROM rate_windows WHERE user_id = ?1 AND window_start = ?5) <= ?6 \
     ON CONFLICT (user_id, day) DO UPDATE SET tokens = tokens + ?3, last_reservation = ?7 WHERE tokens < ?4 \
     RETURNING tokens";
const SETTLE_TOKENS: &str = "UPDATE daily_tokens SET tokens = MAX(tokens + ?3, 0) WHERE user_id = ?1 AND day = ?2";
const TOKENS_USED: &str = "SELECT tokens FROM daily_tokens WHERE user_id = ?1 AND day = ?2";
const EXPIRE_STREAMS: &str = "DELETE FROM active_streams WHERE user_id = ?1 AND started_at <= ?2";
// Like RESERVE_TOKENS, only for a request the minute (?5 window, ?6 limit) admitted.
const ACQUIRE_STREAM: &str = "INSERT INTO active_streams (stream_id, user_id, started_at) SELECT ?1, ?2, ?3 \
     WHERE (SELECT COUNT(*) FROM active_streams WHERE user_id = ?2) < ?4 \
     AND (SELECT request_count FROM rate_windows WHERE user_id = ?2 AND window_start = ?5) <= ?6 RETURNING stream_id";
const RELEASE_STREAM: &str = "DELETE FROM active_streams WHERE stream_id = ?1";

/// A user's counters, deleted with their account.
pub const DELETE_ALL_OF_USER: &[&str] = &[
    "DELETE FROM rate_windows WHERE user_id = ?1",
    "DELETE FROM daily_tokens WHERE user_id = ?1",
    "DELETE FROM active_streams WHERE user_id = ?1",
];

/// The minute's window and the day's budget a request is counted against, and for a stream
/// the slot it takes.
pub struct Limits<'a> {
    pub window_start: u64,
    pub requests_per_minute: u64,
    pub day: &'a str,
    pub estimate: u64,
    pub tokens_per_day: u64,
    pub stream: Option<StreamSlot<'a>>,
    /// The call's id, marking its reservation for later statements of the same batch.
    pub marker: Option<&'a str>,
}

/// A call's marks in D1, for statements that must run only if it was admitted: its id (on
/// the day's row it reserved from) and its stream slot, if any.
pub struct Reservation<'a> {
    pub marker: &'a str,
    pub day: &'a str,
    pub stream_id: Option<&'a str>,
}

/// A stream slot to take: leases older than `expired_before` are dropped first.
pub struct StreamSlot<'a> {
    pub stream_id: &'a str,
    pub now: u64,
    pub expired_before: u64,
    pub limit: u64,
}

/// The statements that count a request (in this order): old windows forgotten, the minute
/// counted, the day's tokens reserved and, for a stream, expired slots dropped and a slot
/// taken. The reservation and the slot happen only if the minute admitted the request.
pub fn count_statements(db: &Db, user_id: &str, l: &Limits<'_>) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut statements = vec![
        db.stmt(FORGET_OLD_WINDOWS, &[text(user_id), num(l.window_start)])?,
        db.stmt(HIT_RATE_WINDOW, &[text(user_id), num(l.window_start)])?,
        db.stmt(
            RESERVE_TOKENS,
            &[
                text(user_id),
                text(l.day),
                num(l.estimate),
                num(l.tokens_per_day),
                num(l.window_start),
                num(l.requests_per_minute),
                opt_text(l.marker),
            ],
        )?,
    ];
    if let Some(s) = &l.stream {
        statements.push(db.stmt(EXPIRE_STREAMS, &[text(user_id), num(s.expired_before)])?);
        statements.push(db.stmt(
            ACQUIRE_STREAM,
            &[
                text(s.stream_id),
                text(user_id),
                num(s.now),
                num(s.limit),
                num(l.window_start),
                num(l.requests_per_minute),
            ],
        )?);
    }
    Ok(statements)
}

/// What the statements of [`count_statements`] (whose `results` these are) counted and took;
/// `plans::decide` says what it means.
pub fn counts(l: &Limits<'_>, results: &[D1Result]) -> Result<Counts, AppError> {
    let counted: Vec<RequestCount> = rows("quota", results.get(1))?;
    Ok(Counts {
        requests_this_minute: counted.first().map(|c| c.request_count),
        tokens_reserved: returned_a_row(results.get(2)),
        stream_slot: l.stream.as_ref().map(|_| returned_a_row(results.get(4))),
    })
}

/// Frees a stream slot taken for a request that was refused on another limit.
pub async fn release_stream(db: &Db, stream_id: &str) -> Result<(), AppError> {
    db.run("release stream", db.stmt(RELEASE_STREAM, &[text(stream_id)])?).await.map(drop)
}

/// Replaces a reservation by what was really used (`delta` = used - reserved).
pub async fn settle_tokens(db: &Db, user_id: &str, day: &str, delta: i64) -> Result<(), AppError> {
    let stmt = db.stmt(SETTLE_TOKENS, &[text(user_id), text(day), super::signed(delta)])?;
    db.run("settle tokens", stmt).await.map(drop)
}

/// The tokens counted for the user's `day`, to batch with the session check.
pub fn tokens_used_statement(db: &Db, user_id: &str, day: &str) -> Result<D1PreparedStatement, AppError> {
    db.stmt(TOKENS_USED, &[text(user_id), text(day)])
}

/// The day's tokens [`tokens_used_statement`] found (0 when none were counted).
pub fn tokens_used(result: Option<&D1Result>) -> Result<u64, AppError> {
    let found: Vec<DayTokens> = rows("tokens used", result)?;
    Ok(found.first().map_or(0, |d| d.tokens))
}

/// The writes that settle a call: its reservation replaced by what was used (`delta` = used -
/// reserved) and its stream slot, if any, freed. For a batch with the call's other writes.
pub fn settle_statements(
    db: &Db,
    user_id: &str,
    day: &str,
    delta: i64,
    stream_id: Option<&str>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut statements = vec![db.stmt(SETTLE_TOKENS, &[text(user_id), text(day), super::signed(delta)])?];
    if let Some(id) = stream_id {
        statements.push(db.stmt(RELEASE_STREAM, &[text(id)])?);
    }
    Ok(statements)
}
