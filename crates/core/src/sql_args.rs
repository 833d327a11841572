//! Values bound to a D1 statement's `?1`, `?2`...: written as one JSON array, so that the edge
//! binds a statement in one call into JavaScript instead of one per value.

use crate::json_out::{push_string, push_u64};

/// One bound value: text, an integer (epoch-ms, counts and keys; JavaScript numbers hold
/// them exactly below 2^53) or NULL. No floats: the store binds none, and writing one would
/// bring float formatting into the wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlArg<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

/// `args` as a JSON array, in order: `[]` for none.
pub fn to_json(args: &[SqlArg<'_>]) -> String {
    let mut out = String::with_capacity(
        2 + args.iter().map(|a| if let SqlArg::Text(s) = a { s.len() + 2 } else { 8 }).sum::<usize>() + args.len(),
    );
    out.push('[');
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match *arg {
            SqlArg::Text(s) => push_string(&mut out, s),
            SqlArg::Int(n) => {
                if n < 0 {
                    out.push('-');
                }
                push_u64(&mut out, n.unsigned_abs());
            }
            SqlArg::Null => out.push_str("null"),
        }
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(args: &[SqlArg<'_>]) -> Value {
        serde_json::from_str(&to_json(args)).expect("valid JSON")
    }

    #[test]
    fn no_arguments_are_an_empty_array() {
        assert_eq!(to_json(&[]), "[]");
    }

    #[test]
    fn text_numbers_and_null_keep_their_order_and_types() {
        let args =
            [SqlArg::Text("usr_1"), SqlArg::Int(1_796_300_972_123), SqlArg::Null, SqlArg::Int(0), SqlArg::Int(-42)];
        assert_eq!(to_json(&args), r#"["usr_1",1796300972123,null,0,-42]"#);
    }

    #[test]
    fn text_survives_quotes_backslashes_controls_and_unicode() {
        let nasty = "a \"quoted\" \\ path\n\t\r\u{0}\u{1f} ünïcödé 🦀 \u{2028} </script>";
        assert_eq!(parsed(&[SqlArg::Text(nasty), SqlArg::Text("")]), json!([nasty, ""]));
    }

    #[test]
    fn integers_are_written_whole_at_both_ends_of_their_range() {
        let max = 9_007_199_254_740_991;
        assert_eq!(to_json(&[SqlArg::Int(max), SqlArg::Int(-max)]), "[9007199254740991,-9007199254740991]");
        assert_eq!(parsed(&[SqlArg::Int(i64::MAX), SqlArg::Int(i64::MIN)]), json!([i64::MAX, i64::MIN]));
    }
}
