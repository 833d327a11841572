//! D1 access: every SQL statement of the Worker lives under this module, parameterized, and
//! every query goes through [`Db`], which counts the rows D1 reports reading and writing.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod billing;
pub mod conversations;
pub mod idempotency;
pub mod memories;
pub mod messages;
pub mod quotas;
pub mod reads;
pub mod summaries;
pub mod tasks;
pub mod throttle;
pub mod usage;

use crate::http::AppError;
use crate::runtime::error_text;
use edgechat_core::serde::de::DeserializeOwned;
pub use edgechat_core::sql_args::SqlArg;
use js_sys::{Array, Reflect, JSON};
use std::cell::Cell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::types::{D1Database as RawDatabase, D1Result as RawResult};
use worker::D1Database;
pub use worker::D1PreparedStatement;

const PING: &str = "SELECT 1 AS ok";

/// One request's handle on D1, with the rows read and written so far (for the log line).
pub struct Db {
    inner: D1Database,
    rows_read: Cell<u64>,
    rows_written: Cell<u64>,
}

impl Db {
    pub fn new(inner: D1Database) -> Self {
        Self { inner, rows_read: Cell::new(0), rows_written: Cell::new(0) }
    }

    pub fn rows_read(&self) -> u64 {
        self.rows_read.get()
    }

    pub fn rows_written(&self) -> u64 {
        self.rows_written.get()
    }

    /// Prepares `sql` with positional arguments bound to `?1`, `?2`...
    pub fn stmt(&self, sql: &str, args: &[SqlArg<'_>]) -> Result<D1PreparedStatement, AppError> {
        let statement = self.inner.prepare(sql);
        if args.is_empty() {
            return Ok(statement);
        }
        let values: Vec<JsValue> = args.iter().map(js_value).collect();
        statement.bind(&values).map_err(|e| AppError::platform("d1 bind", e))
    }

    fn record(&self, result: &D1Result) {
        self.rows_read.set(self.rows_read.get() + result.rows_read);
        self.rows_written.set(self.rows_written.get() + result.rows_written);
    }

    /// Every row of a query.
    pub async fn all<T: DeserializeOwned>(
        &self,
        context: &'static str,
        stmt: D1PreparedStatement,
    ) -> Result<Vec<T>, AppError> {
        let result = self.query(context, stmt).await?;
        rows(context, Some(&result))
    }

    /// Runs one statement (not generic, so each row type adds only its decoding).
    pub async fn query(&self, context: &'static str, stmt: D1PreparedStatement) -> Result<D1Result, AppError> {
        let result = D1Result::settle(stmt.inner().all()).await.map_err(failed(context))?;
        self.record(&result);
        Ok(result)
    }

    /// The first row of a query, if any.
    pub async fn first<T: DeserializeOwned>(
        &self,
        context: &'static str,
        stmt: D1PreparedStatement,
    ) -> Result<Option<T>, AppError> {
        Ok(self.all(context, stmt).await?.into_iter().next())
    }

    /// Runs a write; returns the rows it changed.
    pub async fn run(&self, context: &'static str, stmt: D1PreparedStatement) -> Result<usize, AppError> {
        let result = D1Result::settle(stmt.inner().run()).await.map_err(failed(context))?;
        self.record(&result);
        Ok(changes(&result))
    }

    /// Runs statements as one transaction (all or nothing).
    pub async fn batch(
        &self,
        context: &'static str,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, AppError> {
        let results = self.run_batch(statements).await.map_err(failed(context))?;
        for r in &results {
            self.record(r);
        }
        Ok(results)
    }

    async fn run_batch(&self, statements: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>, String> {
        let count = statements.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        let list: Array = statements.iter().map(|s| JsValue::from(s.inner())).collect();
        // workers-rs's D1Database::batch is the same call; its results are read as below.
        let raw: &RawDatabase = self.inner.as_ref().unchecked_ref();
        let results = JsFuture::from(raw.batch(list).map_err(|e| error_text(&e))?).await.map_err(|e| error_text(&e))?;
        let results: Vec<D1Result> = Array::from(&results).iter().map(D1Result::read).collect();
        if results.len() != count {
            return Err(format!("d1 batch: {} results for {count} statements", results.len()));
        }
        Ok(results)
    }
}

/// One statement's result: what D1 reports reading, writing and changing, and its rows.
pub struct D1Result {
    pub rows_read: u64,
    pub rows_written: u64,
    pub changes: u64,
    rows: String,
}

impl D1Result {
    /// workers-rs's `D1Result` keeps the runtime's object private and converts rows one value
    /// at a time (serde_wasm_bindgen); the store decodes rows from JSON text, so the result is
    /// read from the runtime's object: its meta counts, and its rows stringified in one call.
    fn read(result: JsValue) -> Self {
        let result: RawResult = result.unchecked_into();
        let meta = result.meta().ok();
        let count = |name: &str| {
            let value = meta.as_ref().and_then(|m| Reflect::get(m, &JsValue::from_str(name)).ok());
            value.and_then(|v| v.as_f64()).map_or(0, |n| n as u64)
        };
        let rows = match result.results() {
            Ok(Some(rows)) => JSON::stringify(&rows).ok().map(String::from),
            _ => None,
        };
        Self {
            rows_read: count("rows_read"),
            rows_written: count("rows_written"),
            changes: count("changes"),
            rows: rows.unwrap_or_else(|| "[]".into()),
        }
    }

    async fn settle(promise: Result<js_sys::Promise, JsValue>) -> Result<Self, String> {
        let result = JsFuture::from(promise.map_err(|e| error_text(&e))?).await.map_err(|e| error_text(&e))?;
        Ok(Self::read(result))
    }

    /// Whether the statement returned any row.
    pub fn has_rows(&self) -> bool {
        self.rows.trim() != "[]"
    }

    /// The rows as D1 gave them: a JSON array of objects.
    pub fn rows_json(&self) -> &str {
        &self.rows
    }
}

/// A bound value as the runtime takes it. Integers go as JavaScript numbers (f64): D1 refuses
/// BigInt, and workers-rs's `D1Type::Integer` is an i32, too small for epoch milliseconds.
fn js_value(arg: &SqlArg<'_>) -> JsValue {
    match *arg {
        SqlArg::Text(s) => JsValue::from_str(s),
        SqlArg::Int(n) => JsValue::from_f64(n as f64),
        SqlArg::Null => JsValue::NULL,
    }
}

/// True when D1 answers a trivial query.
pub async fn ping(db: &Db) -> bool {
    match db.stmt(PING, &[]) {
        Ok(stmt) => db.query("ping", stmt).await.is_ok_and(|r| r.has_rows()),
        Err(_) => false,
    }
}

pub(crate) fn text(v: &str) -> SqlArg<'_> {
    SqlArg::Text(v)
}

/// Epoch-ms and counts: exact in a JS number up to 2^53 (above i64::MAX, i64::MAX: only an
/// unlimited plan's token allowance comes near, and JavaScript held neither exactly anyway).
pub(crate) fn num(v: u64) -> SqlArg<'static> {
    SqlArg::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Cursor keys: exact in a JS number below 2^53.
pub(crate) fn signed(v: i64) -> SqlArg<'static> {
    SqlArg::Int(v)
}

pub(crate) fn opt_text(v: Option<&str>) -> SqlArg<'_> {
    v.map_or(SqlArg::Null, SqlArg::Text)
}

fn failed(context: &'static str) -> impl Fn(String) -> AppError {
    move |e| AppError::platform(context, e)
}

/// Rows changed by a write statement.
pub(crate) fn changes(result: &D1Result) -> usize {
    result.changes as usize
}

/// Rows a statement inside a batch returned (none when the batch has no result for it),
/// decoded by their serde derives from the JSON text of an array of objects.
pub(crate) fn rows<T: DeserializeOwned>(context: &'static str, result: Option<&D1Result>) -> Result<Vec<T>, AppError> {
    let Some(result) = result else { return Ok(Vec::new()) };
    edgechat_core::body::parse_rows(result.rows_json()).map_err(|e| AppError::platform(context, e))
}

/// True when a `RETURNING` statement in a batch returned a row: the write happened. (D1's
/// `changes` is not reliable for statements that fire the FTS triggers.)
pub(crate) fn returned_a_row(result: Option<&D1Result>) -> bool {
    result.is_some_and(D1Result::has_rows)
}

/// True when a D1 error is a UNIQUE violation on `column` (e.g. `users.email`).
pub(crate) fn is_unique_violation(err: &AppError, column: &str) -> bool {
    matches!(err.failure(), crate::http::Failure::Platform { cause, .. } if cause.contains("UNIQUE constraint failed") && cause.contains(column))
}
