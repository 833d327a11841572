//! Request bodies: the size cap, the content type, and JSON decoding with errors that say
//! which part of the input is wrong (400 for syntax, 415 for type, 422 for shape).

use crate::json::{self, Map, Value};
use crate::ApiError;

/// Checks a declared `Content-Length` against the cap before any byte is read.
pub fn check_declared_length(content_length: Option<&str>, cap: u64) -> Result<(), ApiError> {
    let Some(raw) = content_length else {
        return Ok(());
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if n > cap => Err(ApiError::payload_too_large(cap)),
        Ok(_) => Ok(()),
        Err(_) => Err(ApiError::bad_request("invalid_content_length", "Content-Length is not a number")),
    }
}

/// True for `application/json`, with or without parameters such as `charset=utf-8`.
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// A request body type read from a JSON object with [`Fields`].
pub trait FromJson: Sized {
    fn from_json(fields: &mut Fields) -> Result<Self, String>;
}

/// Decodes a JSON request body into `T`.
///
/// 415 unless the content type is JSON; 400 for empty or malformed JSON; 422 when the JSON
/// is well formed but has the wrong shape (not an object, or a missing, mistyped or unknown
/// field).
pub fn parse_json<T: FromJson>(content_type: Option<&str>, bytes: &[u8]) -> Result<T, ApiError> {
    if !is_json_content_type(content_type) {
        return Err(ApiError::unsupported_media_type());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_json", "request body is empty"));
    }
    let value = json::parse(bytes).map_err(ApiError::invalid_json)?;
    Fields::read(value, "request body").map_err(ApiError::validation)
}

/// One JSON object's members, taken one by one by the type being read; any member left
/// over is an unknown field.
pub struct Fields {
    members: Map,
    /// Where the object sits, for messages (`request body`, `messages[2]`).
    at: String,
}

/// A JSON object whose members are each read as `T` (`at` names it in messages), in the order
/// given.
pub fn object_entries<T: FromJson>(value: Value, at: &str) -> Result<Vec<(String, T)>, String> {
    let Value::Object(members) = value else {
        return Err(format!("{at} must be a JSON object, not {}", kind(&value)));
    };
    members.into_iter().map(|(name, v)| Fields::read(v, &format!("{at}.{name}")).map(|t| (name, t))).collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Fields {
    /// Reads `value` (which must be an object) as `T`, rejecting members `T` did not take.
    pub fn read<T: FromJson>(value: Value, at: &str) -> Result<T, String> {
        let Value::Object(members) = value else {
            return Err(format!("{at} must be a JSON object, not {}", kind(&value)));
        };
        let mut fields = Fields { members, at: at.to_string() };
        let out = T::from_json(&mut fields)?;
        let unknown = fields.members.keys().next().map(|name| format!("unknown field `{name}` in {}", fields.at));
        unknown.map_or(Ok(out), Err)
    }

    fn wrong(&self, name: &str, expected: &str, found: &Value) -> String {
        format!("field `{name}` in {} must be {expected}, not {}", self.at, kind(found))
    }

    /// Fails naming `name` when the object lacks it.
    pub fn require(&self, name: &str) -> Result<(), String> {
        match self.members.contains_key(name) {
            true => Ok(()),
            false => Err(format!("missing field `{name}` in {}", self.at)),
        }
    }

    /// A required string member.
    pub fn text(&mut self, name: &str) -> Result<String, String> {
        match self.members.remove(name) {
            None => Err(format!("missing field `{name}` in {}", self.at)),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.wrong(name, "a string", &v)),
        }
    }

    /// An optional string member: absent and `null` are both `None`.
    pub fn opt_text(&mut self, name: &str) -> Result<Option<String>, String> {
        Ok(self.nullable_text(name)?.flatten())
    }

    /// An optional string member that tells absent (`None`) from `null` (`Some(None)`).
    pub fn nullable_text(&mut self, name: &str) -> Result<Option<Option<String>>, String> {
        match self.members.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(v) => Err(self.wrong(name, "a string", &v)),
        }
    }

    /// An optional boolean member (absent or `null` is `None`).
    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.members.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(self.wrong(name, "true or false", &v)),
        }
    }

    /// A required whole number from 0 to `max`.
    pub fn uint(&mut self, name: &str, max: u64) -> Result<u64, String> {
        self.opt_uint(name, max)?.ok_or_else(|| format!("missing field `{name}` in {}", self.at))
    }

    /// An optional whole number from 0 to `max` (absent or `null` is `None`).
    pub fn opt_uint(&mut self, name: &str, max: u64) -> Result<Option<u64>, String> {
        match self.members.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(self.wrong(name, &format!("a whole number from 0 to {max}"), &v)),
            },
        }
    }

    /// An optional array of strings (absent is empty).
    pub fn texts(&mut self, name: &str) -> Result<Vec<String>, String> {
        match self.members.remove(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(self.wrong(name, "an array of strings", &other)),
                })
                .collect(),
            Some(v) => Err(self.wrong(name, "an array of strings", &v)),
        }
    }

    /// A required object whose members are each read as `T`, in the order given.
    pub fn entries<T: FromJson>(&mut self, name: &str) -> Result<Vec<(String, T)>, String> {
        match self.members.remove(name) {
            None => Err(format!("missing field `{name}` in {}", self.at)),
            Some(v) => object_entries(v, name),
        }
    }

    /// An optional array of objects, each read as `T` (absent is empty).
    pub fn list<T: FromJson>(&mut self, name: &str) -> Result<Vec<T>, String> {
        match self.members.remove(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                items.into_iter().enumerate().map(|(i, item)| Fields::read(item, &format!("{name}[{i}]"))).collect()
            }
            Some(v) => Err(self.wrong(name, "an array", &v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Sample {
        name: String,
        tags: Vec<Tag>,
        note: Option<Option<String>>,
    }

    #[derive(Debug)]
    struct Tag {
        label: String,
    }

    impl FromJson for Sample {
        fn from_json(f: &mut Fields) -> Result<Self, String> {
            Ok(Self { name: f.text("name")?, tags: f.list("tags")?, note: f.nullable_text("note")? })
        }
    }

    impl FromJson for Tag {
        fn from_json(f: &mut Fields) -> Result<Self, String> {
            Ok(Self { label: f.text("label")? })
        }
    }

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn declared_lengths_over_the_cap_are_413() {
        assert_eq!(check_declared_length(Some("2049"), 2048).unwrap_err().status, 413);
        assert!(check_declared_length(Some("2048"), 2048).is_ok());
        assert!(check_declared_length(None, 2048).is_ok());
        assert_eq!(check_declared_length(Some("-1"), 2048).unwrap_err().status, 400);
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(is_json_content_type(Some("Application/JSON")));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(Some("application/jsonx")));
        assert!(!is_json_content_type(None));
        assert_eq!(parse_json::<Sample>(Some("text/plain"), b"{}").unwrap_err().status, 415);
    }

    #[test]
    fn malformed_json_is_400_and_wrong_shape_is_422() {
        assert_eq!(parse_json::<Sample>(JSON, b"{\"name\":").unwrap_err().status, 400);
        assert_eq!(parse_json::<Sample>(JSON, b"  ").unwrap_err().status, 400);
        let unknown = parse_json::<Sample>(JSON, b"{\"name\":\"a\",\"role\":\"admin\"}").unwrap_err();
        assert_eq!(unknown.status, 422);
        assert_eq!(unknown.message, "unknown field `role` in request body");
        let mistyped = parse_json::<Sample>(JSON, b"{\"name\":5}").unwrap_err();
        assert_eq!(
            (mistyped.status, mistyped.message.as_str()),
            (422, "field `name` in request body must be a string, not a number")
        );
        let missing = parse_json::<Sample>(JSON, b"{}").unwrap_err();
        assert_eq!((missing.status, missing.message.as_str()), (422, "missing field `name` in request body"));
        let not_object = parse_json::<Sample>(JSON, b"[1]").unwrap_err();
        assert_eq!(
            (not_object.status, not_object.message.as_str()),
            (422, "request body must be a JSON object, not an array")
        );
        let sample = parse_json::<Sample>(JSON, b"{\"name\":\"a\"}").unwrap();
        assert_eq!((sample.name.as_str(), sample.tags.len(), sample.note), ("a", 0, None));
    }

    struct Limits {
        per_minute: u64,
        burst: Option<u64>,
        models: Vec<String>,
    }

    impl FromJson for Limits {
        fn from_json(f: &mut Fields) -> Result<Self, String> {
            Ok(Self {
                per_minute: f.uint("per_minute", 1000)?,
                burst: f.opt_uint("burst", 10)?,
                models: f.texts("models")?,
            })
        }
    }

    fn limits(json: &str) -> Result<Vec<(String, Limits)>, String> {
        object_entries(json::parse_str(json).unwrap(), "PLANS")
    }

    #[test]
    fn numbers_string_lists_and_named_entries() {
        let read = limits(r#"{"b":{"per_minute":5,"models":["x","y"]},"a":{"per_minute":1000,"burst":null}}"#).unwrap();
        assert_eq!(read.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!((read[1].1.per_minute, read[1].1.burst, read[1].1.models.len()), (1000, None, 0));
        assert_eq!((read[0].1.per_minute, &read[0].1.models[..]), (5, &["x".to_string(), "y".to_string()][..]));
        let err = |json| limits(json).err().unwrap();
        assert_eq!(
            err(r#"{"a":{"per_minute":1001}}"#),
            "field `per_minute` in PLANS.a must be a whole number from 0 to 1000, not a number"
        );
        assert_eq!(
            err(r#"{"a":{"per_minute":-1}}"#),
            "field `per_minute` in PLANS.a must be a whole number from 0 to 1000, not a number"
        );
        assert_eq!(
            err(r#"{"a":{"per_minute":1.5}}"#),
            "field `per_minute` in PLANS.a must be a whole number from 0 to 1000, not a number"
        );
        assert_eq!(
            err(r#"{"a":{"per_minute":"5"}}"#),
            "field `per_minute` in PLANS.a must be a whole number from 0 to 1000, not a string"
        );
        assert_eq!(err(r#"{"a":{"burst":1}}"#), "missing field `per_minute` in PLANS.a");
        assert_eq!(
            err(r#"{"a":{"per_minute":1,"models":["x",2]}}"#),
            "field `models` in PLANS.a must be an array of strings, not a number"
        );
        assert_eq!(err(r#"{"a":[]}"#), "PLANS.a must be a JSON object, not an array");
        assert_eq!(err(r#"[]"#), "PLANS must be a JSON object, not an array");
    }

    #[test]
    fn nested_objects_are_read_and_named_in_errors() {
        let s =
            parse_json::<Sample>(JSON, br#"{"name":"a","tags":[{"label":"x"},{"label":"y"}],"note":null}"#).unwrap();
        assert_eq!(s.tags.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(s.note, Some(None));
        let bad =
            parse_json::<Sample>(JSON, br#"{"name":"a","tags":[{"label":"x"},{"label":"y","z":1}]}"#).unwrap_err();
        assert_eq!(bad.message, "unknown field `z` in tags[1]");
        let bad = parse_json::<Sample>(JSON, br#"{"name":"a","tags":[{"label":3}]}"#).unwrap_err();
        assert_eq!(bad.message, "field `label` in tags[0] must be a string, not a number");
        let bad = parse_json::<Sample>(JSON, br#"{"name":"a","tags":{}}"#).unwrap_err();
        assert_eq!(bad.message, "field `tags` in request body must be an array, not an object");
        assert_eq!(parse_json::<Sample>(JSON, br#"{"name":"a","note":7}"#).unwrap_err().status, 422);
    }
}
