//! D1 access: every SQL statement of the Worker lives under this module, parameterized, and
//! every query goes through [`Db`], which counts the rows D1 reports reading and writing.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod billing;
pub mod conversations;
pub mod messages;
pub mod quotas;
pub mod throttle;
pub mod usage;

use crate::http::AppError;
use crate::platform::d1::{D1Database, D1PreparedStatement, D1Result};
use edgechat_core::serde::de::DeserializeOwned;
pub use edgechat_core::sql_args::SqlArg;
use std::cell::Cell;

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

    /// Prepares `sql` with positional arguments.
    pub fn stmt(&self, sql: &str, args: &[SqlArg<'_>]) -> Result<D1PreparedStatement, AppError> {
        self.inner.statement(sql, args).map_err(|e| AppError::platform("d1 bind", e))
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
        let result = stmt.all().await.map_err(failed(context))?;
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
        let result = stmt.run().await.map_err(failed(context))?;
        self.record(&result);
        Ok(changes(&result))
    }

    /// Runs statements as one transaction (all or nothing).
    pub async fn batch(
        &self,
        context: &'static str,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, AppError> {
        let results = self.inner.batch(statements).await.map_err(failed(context))?;
        for r in &results {
            self.record(r);
        }
        Ok(results)
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
