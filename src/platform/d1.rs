//! D1 through its JavaScript binding: a statement prepared and bound in one call (its values
//! as one JSON array), and results handed to Rust as one string each (counts, then rows as
//! JSON; a batch's joined by newlines) so rows decode in a single pass.

use super::error_text;
use edgechat_core::sql_args::{self, SqlArg};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    pub type D1Database;
    pub type D1PreparedStatement;
}

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = d1Statement, catch)]
    fn d1_statement(db: &D1Database, sql: &str, args: &str) -> Result<D1PreparedStatement, JsValue>;
    #[wasm_bindgen(js_name = d1All)]
    fn d1_all(statement: &D1PreparedStatement) -> js_sys::Promise;
    #[wasm_bindgen(js_name = d1Run)]
    fn d1_run(statement: &D1PreparedStatement) -> js_sys::Promise;
    #[wasm_bindgen(js_name = d1Batch)]
    fn d1_batch(db: &D1Database, statements: Vec<JsValue>) -> js_sys::Promise;
}

/// One statement's result: what D1 reports reading, writing and changing, and its rows.
pub struct D1Result {
    pub rows_read: u64,
    pub rows_written: u64,
    pub changes: u64,
    rows: String,
}

impl D1Result {
    fn unpack(packed: &str) -> Self {
        let mut parts = packed.splitn(4, ' ');
        let mut count = || parts.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let (rows_read, rows_written, changes) = (count(), count(), count());
        let rows = parts.next().unwrap_or("[]").to_string();
        Self { rows_read, rows_written, changes, rows }
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

impl D1Database {
    /// `sql` with `args` bound to `?1`, `?2`...
    pub fn statement(&self, sql: &str, args: &[SqlArg<'_>]) -> Result<D1PreparedStatement, String> {
        let args = if args.is_empty() { String::new() } else { sql_args::to_json(args) };
        d1_statement(self, sql, &args).map_err(|e| error_text(&e))
    }

    /// Runs `statements` as one transaction (all or nothing).
    pub async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>, String> {
        let count = statements.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = statements.into_iter().map(JsValue::from).collect();
        let packed = JsFuture::from(d1_batch(self, list)).await.map_err(|e| error_text(&e))?;
        let packed = packed.as_string().unwrap_or_default();
        let results: Vec<D1Result> = packed.split('\n').map(D1Result::unpack).collect();
        if results.len() != count {
            return Err(format!("d1 batch: {} results for {count} statements", results.len()));
        }
        Ok(results)
    }
}

impl D1PreparedStatement {
    /// Runs a query and returns its rows.
    pub async fn all(&self) -> Result<D1Result, String> {
        settle(d1_all(self)).await
    }

    /// Runs a write.
    pub async fn run(&self) -> Result<D1Result, String> {
        settle(d1_run(self)).await
    }
}

async fn settle(promise: js_sys::Promise) -> Result<D1Result, String> {
    let packed = JsFuture::from(promise).await.map_err(|e| error_text(&e))?;
    Ok(D1Result::unpack(&packed.as_string().unwrap_or_default()))
}
