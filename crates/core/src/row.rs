//! Database rows read column by column (D1 hands rows over as a JSON array of objects):
//! every row type decodes through this one reader instead of a decoder of its own (each
//! serde-derived visitor added kilobytes to the wasm).

use crate::json::{self, Map, Value};

/// One row of a D1 result: its columns by name, and the first column that could not be read.
pub struct Row {
    columns: Map,
    wrong: Option<String>,
}

/// A type made from one D1 row. Column reads never fail on the spot: a missing or mistyped
/// column reads as empty and is reported by [`decode`] for the whole row, so each
/// `from_row` is straight-line code without an exit (and its drops) per column.
pub trait FromRow: Sized {
    fn from_row(row: &mut Row) -> Self;
}

/// A row as it is: for statements whose caller reads one column by hand.
impl FromRow for Row {
    fn from_row(row: &mut Row) -> Self {
        Row { columns: std::mem::take(&mut row.columns), wrong: None }
    }
}

/// The rows of a D1 result (a JSON array of objects), decoded as `T`.
pub fn decode<T: FromRow>(text: &str) -> Result<Vec<T>, String> {
    let Value::Array(rows) = json::parse_str(text).map_err(|e| format!("D1 row decode: {e}"))? else {
        return Err("D1 row decode: not an array of rows".into());
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Value::Object(columns) = row else { return Err("D1 row decode: a row is not an object".into()) };
        let mut row = Row { columns, wrong: None };
        let decoded = T::from_row(&mut row);
        if let Some(column) = row.wrong {
            return Err(format!("D1 row decode: column {column} is missing or of another type"));
        }
        out.push(decoded);
    }
    Ok(out)
}

impl Row {
    fn take(&mut self, column: &str) -> Value {
        self.columns.remove(column).unwrap_or(Value::Null)
    }

    fn mark(&mut self, column: &str) {
        if self.wrong.is_none() {
            self.wrong = Some(column.to_string());
        }
    }

    /// A text column.
    pub fn text(&mut self, column: &str) -> String {
        match self.take(column) {
            Value::String(s) => s,
            _ => {
                self.mark(column);
                String::new()
            }
        }
    }

    /// A nullable text column.
    pub fn opt_text(&mut self, column: &str) -> Option<String> {
        match self.take(column) {
            Value::Null => None,
            Value::String(s) => Some(s),
            _ => {
                self.mark(column);
                None
            }
        }
    }

    /// A non-negative integer column.
    pub fn uint(&mut self, column: &str) -> u64 {
        match self.opt_uint(column) {
            Some(n) => n,
            None => {
                self.mark(column);
                0
            }
        }
    }

    /// A nullable non-negative integer column.
    pub fn opt_uint(&mut self, column: &str) -> Option<u64> {
        match self.take(column) {
            Value::Null => None,
            v => {
                let n = v.as_u64();
                if n.is_none() {
                    self.mark(column);
                }
                n
            }
        }
    }

    /// A signed integer column (flags stored as 0/1 among them).
    pub fn int(&mut self, column: &str) -> i64 {
        let n = self.take(column).as_i64();
        if n.is_none() {
            self.mark(column);
        }
        n.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::User;
    use crate::conversations::Message;

    const USER: &str = r#"{"user_id":"usr_1","email":"a@b.example","display_name":null,"role":"user","plan":"free",
        "is_disabled":0,"created_at":1700000000000,"updated_at":1700000000001,"cache_version":3}"#;

    #[test]
    fn rows_decode_by_column_name() {
        let users: Vec<User> = decode(&format!("[{USER},{}]", USER.replace("usr_1", "usr_2"))).unwrap();
        assert_eq!(users.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), ["usr_1", "usr_2"]);
        let u = &users[0];
        assert_eq!(
            (u.display_name.as_deref(), u.is_disabled, u.updated_at, u.cache_version),
            (None, 0, 1700000000001, 3)
        );
        assert!(decode::<User>("[]").unwrap().is_empty());
    }

    #[test]
    fn an_optional_column_may_be_absent() {
        let without_version = USER.replace(r#","cache_version":3"#, "");
        assert_eq!(decode::<User>(&format!("[{without_version}]")).unwrap()[0].cache_version, 0);
    }

    #[test]
    fn the_first_wrong_column_is_named() {
        let err = |json: String| decode::<User>(&json).err().unwrap();
        assert_eq!(
            err(format!("[{}]", USER.replace(r#""email":"a@b.example""#, r#""email":7"#))),
            "D1 row decode: column email is missing or of another type"
        );
        assert_eq!(
            err(format!("[{}]", USER.replace(r#""created_at":1700000000000"#, r#""created_at":-1"#))),
            "D1 row decode: column created_at is missing or of another type"
        );
        let both = USER.replace(r#""role":"user""#, r#""role":null"#).replace(r#""plan":"free","#, "");
        assert_eq!(err(format!("[{both}]")), "D1 row decode: column role is missing or of another type");
        assert_eq!(err(format!("[{USER},1]")), "D1 row decode: a row is not an object");
        assert_eq!(err("{}".into()), "D1 row decode: not an array of rows");
        assert!(err("[".into()).starts_with("D1 row decode: "));
    }

    #[test]
    fn nullable_and_signed_columns() {
        let row = r#"[{"message_id":"m","conversation_id":"c","parent_id":null,"role":"user","content":"hi","status":"complete",
            "model":null,"provider":null,"prompt_tokens":null,"completion_tokens":5,"is_usage_estimated":1,
            "time_to_first_token_ms":null,"duration_ms":null,"created_at":1}]"#;
        let m = &decode::<Message>(row).unwrap()[0];
        assert_eq!(
            (m.parent_id.as_deref(), m.prompt_tokens, m.completion_tokens, m.is_usage_estimated),
            (None, None, Some(5), 1)
        );
        let mut r = Row::from_row(&mut Row {
            columns: json::parse_str(r#"{"n":"x"}"#).unwrap().as_object().unwrap().clone(),
            wrong: None,
        });
        assert_eq!((r.opt_uint("n"), r.wrong.as_deref()), (None, Some("n")));
    }
}
