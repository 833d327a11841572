//! JSON text written as it is built: objects field by field and arrays item by item, with
//! serde_json's escaping. For the bodies edgechat builds by hand, without a `Value` tree (each
//! `json!` object costs its keys' allocations, a map insert per field and the tree's drop).

/// A value that writes itself as JSON text.
pub trait ToJson {
    fn to_json(&self) -> String;
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> String {
        array(self.iter().map(ToJson::to_json))
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> String {
        self.as_slice().to_json()
    }
}

/// A JSON object being written: `Object::new().str("a", "x").num("b", 1).end()`.
pub struct Object {
    text: String,
}

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

impl Object {
    pub fn new() -> Self {
        Object { text: String::from("{") }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        push_string(&mut self.text, key);
        self.text.push(':');
        &mut self.text
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        push_string(self.key(key), value);
        self
    }

    /// A string, or `null` for `None`.
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => push_string(self.key(key), v),
            None => self.key(key).push_str("null"),
        }
        self
    }

    pub fn num(mut self, key: &str, value: u64) -> Self {
        push_u64(self.key(key), value);
        self
    }

    /// A number, or `null` for `None`.
    pub fn opt_num(mut self, key: &str, value: Option<u64>) -> Self {
        match value {
            Some(v) => push_u64(self.key(key), v),
            None => self.key(key).push_str("null"),
        }
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// A boolean, or `null` for `None`.
    pub fn opt_bool(mut self, key: &str, value: Option<bool>) -> Self {
        self.key(key).push_str(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
        self
    }

    /// `value`, which must already be JSON text (a nested object, an array, a serialized view).
    pub fn raw(mut self, key: &str, value: &str) -> Self {
        self.key(key).push_str(value);
        self
    }

    /// `value` written as JSON, or `null` for `None`.
    pub fn opt_json<T: ToJson>(self, key: &str, value: Option<&T>) -> Self {
        match value {
            Some(v) => self.raw(key, &v.to_json()),
            None => self.raw(key, "null"),
        }
    }

    pub fn end(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// A JSON array of items that are already JSON text.
pub fn array<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut text = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&item);
    }
    text.push(']');
    text
}

/// `value` as a JSON string (quoted and escaped).
pub fn string(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 2);
    push_string(&mut text, value);
    text
}

/// Appends `value` quoted, escaped as serde_json escapes: `"` and `\`, the short forms of
/// backspace, form feed, newline, carriage return and tab, and `\u00XX` for the other control
/// characters. Everything else (`/`, non-ASCII) is written as it is.
pub(crate) fn push_string(text: &mut String, value: &str) {
    text.push('"');
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        text.push_str(&value[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            text.push_str("\\u00");
            text.push(HEX[usize::from(b >> 4)] as char);
            text.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            text.push_str(short);
        }
        start = i + 1;
    }
    text.push_str(&value[start..]);
    text.push('"');
}

pub(crate) fn push_u64(text: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    text.push_str(core::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn objects_read_back_as_the_same_json() {
        let text = Object::new()
            .str("s", "a \"quoted\" \\ line\nwith\ttabs, \u{1} and é / ✓")
            .opt_str("none", None)
            .opt_str("some", Some("x"))
            .num("zero", 0)
            .num("max", u64::MAX)
            .opt_num("n", None)
            .bool("t", true)
            .bool("f", false)
            .raw("nested", &Object::new().str("k", "v").end())
            .raw("list", &array(["1".to_string(), string("two")]))
            .end();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "s": "a \"quoted\" \\ line\nwith\ttabs, \u{1} and é / ✓", "none": null, "some": "x", "zero": 0,
                "max": u64::MAX, "n": null, "t": true, "f": false, "nested": { "k": "v" }, "list": [1, "two"],
            })
        );
    }

    #[test]
    fn strings_are_escaped_byte_for_byte_as_serde_json_escapes_them() {
        let all: String = (0u8..=0x7f).map(char::from).chain("é✓\u{2028}".chars()).collect();
        assert_eq!(string(&all), serde_json::to_string(&all).unwrap());
        assert_eq!(Object::new().end(), "{}");
        assert_eq!(array(Vec::new()), "[]");
    }
}
