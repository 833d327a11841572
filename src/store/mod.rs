//! D1 access: every SQL statement of the Worker lives under this module, parameterized.

pub mod accounts;
pub mod api_keys;
pub mod throttle;

use crate::http::AppError;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

const PING: &str = "SELECT 1 AS ok";

/// True when D1 answers a trivial query.
pub async fn ping(db: &D1Database) -> bool {
    db.prepare(PING)
        .first::<serde_json::Value>(Some("ok"))
        .await
        .is_ok_and(|v| v.is_some())
}

/// Prepares `sql` with positional arguments.
pub(crate) fn stmt(
    db: &D1Database,
    sql: &str,
    args: &[JsValue],
) -> Result<D1PreparedStatement, AppError> {
    db.prepare(sql)
        .bind(args)
        .map_err(|e| AppError::platform("d1 bind", e))
}

pub(crate) fn text(v: &str) -> JsValue {
    JsValue::from_str(v)
}

/// Epoch-ms and counts: exact in a JS number up to 2^53.
pub(crate) fn num(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

pub(crate) fn opt_text(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from_str)
}

pub(crate) fn failed(context: &'static str) -> impl Fn(worker::Error) -> AppError {
    move |e| AppError::platform(context, e)
}

/// Rows changed by a write statement.
pub(crate) fn changes(result: &D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
}

/// Runs statements as one transaction (all or nothing).
pub(crate) async fn batch(
    db: &D1Database,
    context: &'static str,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<D1Result>, AppError> {
    db.batch(statements).await.map_err(failed(context))
}

/// True when a D1 error is a UNIQUE violation on `column` (e.g. `users.email`).
pub(crate) fn is_unique_violation(err: &AppError, column: &str) -> bool {
    matches!(err, AppError::Platform { cause, .. } if cause.contains("UNIQUE constraint failed") && cause.contains(column))
}
