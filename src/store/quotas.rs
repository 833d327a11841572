//! Exact counters in D1 for plan limits: requests per minute, tokens per day (with a record of
//! each call's reservation until it settles), concurrent streams (leased slots). Each
//! check-and-count is a conditional statement, so concurrent requests can never both take the
//! last unit (D1 runs statements one at a time); a request's minute and day are counted in one
//! batch.

use super::{num, opt_text, returned_a_row, rows, text, Db};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::plans::{Counts, DayTokens, RequestCount};

// Every request counts in its minute; it is admitted when its count is within the limit.
const HIT_RATE_WINDOW: &str = "INSERT INTO rate_windows (user_id, window_start, request_count) VALUES (?1, ?2, 1) \
     ON CONFLICT (user_id, window_start) DO UPDATE SET request_count = request_count + 1 RETURNING request_count";
const FORGET_OLD_WINDOWS: &str = "DELETE FROM rate_windows WHERE user_id = ?1 AND window_start < ?2";
// Runs right after HIT_RATE_WINDOW in the same batch: only a request admitted by the minute
// (?5 window, ?6 limit) reserves, and only when its whole reservation ?3 (its worst case)
// fits in what is left of the day's budget ?4: reservations never take the day past it. The
// day's row is marked with ?7, the call's reservation id, for later statements of the batch
// that must run only if it reserved (RECORD_RESERVATION, TURN_ADMITTED in messages.rs).
const RESERVE_TOKENS: &str = "INSERT INTO daily_tokens (user_id, day, tokens, last_reservation) SELECT ?1, ?2, ?3, ?7 \
     WHERE ?3 <= ?4 AND (SELECT request_count FROM rate_windows WHERE user_id = ?1 AND window_start = ?5) <= ?6 \
     ON CONFLICT (user_id, day) DO UPDATE SET tokens = tokens + ?3, last_reservation = ?7 WHERE tokens + ?3 <= ?4 \
     RETURNING tokens";
// Gives back tokens reserved for a call refused on another limit (it recorded no reservation).
const RETURN_TOKENS: &str = "UPDATE daily_tokens SET tokens = MAX(tokens + ?3, 0) WHERE user_id = ?1 AND day = ?2";
// Replaces a reservation by what was used (?3 = used - reserved), only while its record is
// there: a reservation already settled as `unsettled` (SETTLE_EXPIRED_USAGE) stays at the
// amount reserved.
const SETTLE_TOKENS: &str = "UPDATE daily_tokens SET tokens = MAX(tokens + ?3, 0) WHERE user_id = ?1 AND day = ?2 \
     AND EXISTS (SELECT 1 FROM reservations WHERE reservation_id = ?4)";
const TOKENS_USED: &str = "SELECT tokens FROM daily_tokens WHERE user_id = ?1 AND day = ?2";
// The call's reservation, recorded only if RESERVE_TOKENS reserved it (its mark on the day's
// row) and, for a stream, ACQUIRE_STREAM gave it its slot (?12).
const RECORD_RESERVATION: &str = "INSERT INTO reservations (reservation_id, user_id, day, prompt_tokens, \
     completion_tokens, model, source, api_key_id, created_at, expires_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
     WHERE EXISTS (SELECT 1 FROM daily_tokens WHERE user_id = ?2 AND day = ?3 AND last_reservation = ?1) \
     AND (?11 IS NULL OR EXISTS (SELECT 1 FROM active_streams WHERE stream_id = ?11))";
const FORGET_RESERVATION: &str = "DELETE FROM reservations WHERE reservation_id = ?1";
// The user's reservations whose calls stopped renewing them (their instance died): settled at
// the amount reserved (already counted in the day's tokens), each with an estimated usage
// record of status `unsettled` whose id is derived from the reservation's.
const SETTLE_EXPIRED_USAGE: &str = "INSERT INTO usage_records (usage_record_id, user_id, api_key_id, source, model, \
     provider, status, prompt_tokens, completion_tokens, is_usage_estimated, is_cache_hit, created_at) \
     SELECT 'use_' || substr(reservation_id, 5), user_id, api_key_id, source, model, NULL, 'unsettled', prompt_tokens, \
     completion_tokens, 1, 0, created_at FROM reservations WHERE user_id = ?1 AND expires_at <= ?2";
const FORGET_EXPIRED: &str = "DELETE FROM reservations WHERE user_id = ?1 AND expires_at <= ?2";
const RENEW_RESERVATION: &str = "UPDATE reservations SET expires_at = ?2 WHERE reservation_id = ?1";
const EXPIRE_STREAMS: &str = "DELETE FROM active_streams WHERE user_id = ?1 AND started_at <= ?2";
// Like RESERVE_TOKENS, only for a request the minute (?5 window, ?6 limit) admitted.
const ACQUIRE_STREAM: &str = "INSERT INTO active_streams (stream_id, user_id, started_at) SELECT ?1, ?2, ?3 \
     WHERE (SELECT COUNT(*) FROM active_streams WHERE user_id = ?2) < ?4 \
     AND (SELECT request_count FROM rate_windows WHERE user_id = ?2 AND window_start = ?5) <= ?6 RETURNING stream_id";
const RENEW_STREAM: &str = "UPDATE active_streams SET started_at = ?2 WHERE stream_id = ?1";
const RELEASE_STREAM: &str = "DELETE FROM active_streams WHERE stream_id = ?1";

/// A user's counters, deleted with their account.
pub const DELETE_ALL_OF_USER: &[&str] = &[
    "DELETE FROM rate_windows WHERE user_id = ?1",
    "DELETE FROM daily_tokens WHERE user_id = ?1",
    "DELETE FROM active_streams WHERE user_id = ?1",
    "DELETE FROM reservations WHERE user_id = ?1",
];

/// The minute's window and the day's budget a request is counted against, the reservation it
/// records, and for a stream the slot it takes.
pub struct Limits<'a> {
    pub window_start: u64,
    pub requests_per_minute: u64,
    pub tokens_per_day: u64,
    pub reservation: Reserved<'a>,
    pub stream: Option<StreamSlot<'a>>,
}

/// What an admitted call reserves, recorded until it settles.
pub struct Reserved<'a> {
    /// The call's reservation id, also its mark on the day's row.
    pub reservation_id: &'a str,
    pub day: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub model: &'a str,
    pub source: &'static str,
    pub api_key_id: Option<&'a str>,
    pub now: u64,
    /// When the reservation is settled as `unsettled` unless renewed.
    pub expires_at: u64,
}

impl Reserved<'_> {
    fn tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// A call's marks in D1, for statements that must run only if it was admitted: its
/// reservation id (on the day's row it reserved from) and its stream slot, if any.
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
/// counted, the day's tokens reserved, for a stream expired slots dropped and a slot taken,
/// then the reservation recorded and the user's expired reservations settled. The
/// reservation and the slot happen only if the minute admitted the request.
pub fn count_statements(db: &Db, user_id: &str, l: &Limits<'_>) -> Result<Vec<D1PreparedStatement>, AppError> {
    let r = &l.reservation;
    let mut statements = vec![
        db.stmt(FORGET_OLD_WINDOWS, &[text(user_id), num(l.window_start)])?,
        db.stmt(HIT_RATE_WINDOW, &[text(user_id), num(l.window_start)])?,
        db.stmt(
            RESERVE_TOKENS,
            &[
                text(user_id),
                text(r.day),
                num(r.tokens()),
                num(l.tokens_per_day),
                num(l.window_start),
                num(l.requests_per_minute),
                text(r.reservation_id),
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
    statements.push(db.stmt(
        RECORD_RESERVATION,
        &[
            text(r.reservation_id),
            text(user_id),
            text(r.day),
            num(r.prompt_tokens),
            num(r.completion_tokens),
            text(r.model),
            text(r.source),
            opt_text(r.api_key_id),
            num(r.now),
            num(r.expires_at),
            opt_text(l.stream.as_ref().map(|s| s.stream_id)),
        ],
    )?);
    statements.push(db.stmt(SETTLE_EXPIRED_USAGE, &[text(user_id), num(r.now)])?);
    statements.push(db.stmt(FORGET_EXPIRED, &[text(user_id), num(r.now)])?);
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

/// Gives back `tokens` reserved for a request refused on another limit.
pub async fn return_tokens(db: &Db, user_id: &str, day: &str, tokens: u64) -> Result<(), AppError> {
    let delta = -i64::try_from(tokens).unwrap_or(i64::MAX);
    let stmt = db.stmt(RETURN_TOKENS, &[text(user_id), text(day), super::signed(delta)])?;
    db.run("return tokens", stmt).await.map(drop)
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
/// reserved) and forgotten, and its stream slot, if any, freed. For a batch with the call's
/// other writes.
pub fn settle_statements(
    db: &Db,
    user_id: &str,
    reservation: &Reservation<'_>,
    delta: i64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let id = text(reservation.marker);
    let mut statements = vec![
        db.stmt(SETTLE_TOKENS, &[text(user_id), text(reservation.day), super::signed(delta), id])?,
        db.stmt(FORGET_RESERVATION, &[id])?,
    ];
    if let Some(stream) = reservation.stream_id {
        statements.push(db.stmt(RELEASE_STREAM, &[text(stream)])?);
    }
    Ok(statements)
}

/// The writes that keep a running call's reservation (until `expires_at`) and its stream
/// slot's lease (from `now`).
pub fn renew_statements(
    db: &Db,
    reservation_id: &str,
    stream_id: Option<&str>,
    now: u64,
    expires_at: u64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut statements = vec![db.stmt(RENEW_RESERVATION, &[text(reservation_id), num(expires_at)])?];
    if let Some(stream) = stream_id {
        statements.push(db.stmt(RENEW_STREAM, &[text(stream), num(now)])?);
    }
    Ok(statements)
}
