//! D1 rows read column by column: every row type decodes through this one reader instead of
//! a serde visitor of its own (each derived visitor added kilobytes to the wasm).

use serde_json::{Map, Value};

/// One row of a D1 result: its columns by name.
pub struct Row(Map<String, Value>);

/// A type made from one D1 row.
pub trait FromRow: Sized {
    fn from_row(row: &mut Row) -> Result<Self, String>;
}

/// A row as it is: for statements whose caller reads one column by hand.
impl FromRow for Row {
    fn from_row(row: &mut Row) -> Result<Self, String> {
        Ok(Row(std::mem::take(&mut row.0)))
    }
}

/// The rows of a D1 result (a JSON array of objects), decoded as `T`. (Parsed as a `Value`
/// and matched: decoding into typed containers would link serde's type-mismatch messages.)
pub fn decode<T: FromRow>(json: &str) -> Result<Vec<T>, String> {
    let Value::Array(rows) = serde_json::from_slice(json.as_bytes()).map_err(|e| format!("D1 row decode: {e}"))? else {
        return Err("D1 row decode: not an array of rows".into());
    };
    rows.into_iter()
        .map(|r| match r {
            Value::Object(columns) => T::from_row(&mut Row(columns)),
            _ => Err("D1 row decode: a row is not an object".into()),
        })
        .collect()
}

fn wrong(column: &str) -> String {
    format!("D1 row decode: column {column} is missing or of another type")
}

impl Row {
    fn take(&mut self, column: &str) -> Value {
        self.0.remove(column).unwrap_or(Value::Null)
    }

    /// A text column.
    pub fn text(&mut self, column: &str) -> Result<String, String> {
        self.opt_text(column)?.ok_or_else(|| wrong(column))
    }

    /// A nullable text column.
    pub fn opt_text(&mut self, column: &str) -> Result<Option<String>, String> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(wrong(column)),
        }
    }

    /// A non-negative integer column.
    pub fn uint(&mut self, column: &str) -> Result<u64, String> {
        self.opt_uint(column)?.ok_or_else(|| wrong(column))
    }

    /// A nullable non-negative integer column.
    pub fn opt_uint(&mut self, column: &str) -> Result<Option<u64>, String> {
        match self.take(column) {
            Value::Null => Ok(None),
            v => v.as_u64().map(Some).ok_or_else(|| wrong(column)),
        }
    }

    /// A signed integer column (flags stored as 0/1 among them).
    pub fn int(&mut self, column: &str) -> Result<i64, String> {
        self.take(column).as_i64().ok_or_else(|| wrong(column))
    }
}
