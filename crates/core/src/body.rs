//! Request bodies and JSON config values: the size cap, the content type, and serde decoding
//! with errors that say which part of the input is wrong (400 for syntax, 415 for type, 422
//! for shape, naming the field path).

use crate::ApiError;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

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

/// Decodes a JSON request body into `T`.
///
/// 415 unless the content type is JSON; 400 for an empty body or malformed JSON (anywhere in
/// the body, even after a member of the wrong shape); 422 when the JSON is well formed but
/// has the wrong shape (not an object, or a missing, mistyped or unknown field), naming the
/// field's path.
pub fn parse_json<T: DeserializeOwned>(content_type: Option<&str>, bytes: &[u8]) -> Result<T, ApiError> {
    // Only the decoding is per type: the checks and the error's wording are shared.
    check_body(content_type, bytes)?;
    decode(bytes, "request body").map_err(|e| body_error(e, bytes))
}

fn check_body(content_type: Option<&str>, bytes: &[u8]) -> Result<(), ApiError> {
    if !is_json_content_type(content_type) {
        return Err(ApiError::unsupported_media_type());
    }
    let Some(&first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(ApiError::bad_request("invalid_json", "request body is empty"));
    };
    // serde's derives would also read a struct from an array of its fields in order.
    match first {
        b'{' => Ok(()),
        _ => Err(body_error(Decode::Shape("request body: expected a JSON object".into()), bytes)),
    }
}

fn body_error(e: Decode, bytes: &[u8]) -> ApiError {
    match settle(e, bytes) {
        Decode::Syntax(e) => ApiError::invalid_json(e),
        Decode::Shape(message) => ApiError::validation(message),
    }
}

/// Decodes a JSON config value (`PLANS`, `STRIPE_PRICE_PLANS`); the message names the path of
/// a member of the wrong shape.
pub fn parse_config<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    decode(text.as_bytes(), "the value").map_err(|e| config_error(e, text))
}

fn config_error(e: Decode, text: &str) -> String {
    match settle(e, text.as_bytes()) {
        Decode::Syntax(e) => format!("not valid JSON: {e}"),
        Decode::Shape(message) => message,
    }
}

/// The rows of a D1 result (the JSON text of an array of objects) as `T`s. The error is logged,
/// and values are user data: it names a missing column, or the type a column should have had
/// and where in the text, but never a value. (Unlike a body's, a row's error does not track the
/// path: our own SQL makes the rows, and tracking would double every row type's decoder.)
pub fn parse_rows<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    serde_json::from_slice(text.as_bytes()).map_err(row_error)
}

fn row_error(e: serde_json::Error) -> String {
    let at = format!("at line {} column {}", e.line(), e.column());
    let message = e.to_string();
    if !e.is_data() {
        return format!("D1 row decode: not JSON {at}");
    }
    match (message.strip_prefix("missing field "), message.rsplit_once(", expected ")) {
        (Some(_), _) => format!("D1 row decode: {message}"),
        (None, Some((_, expected))) => {
            let expected = expected.strip_suffix(&format!(" {at}")).unwrap_or(expected);
            format!("D1 row decode: a value of another type where {expected} belongs, {at}")
        }
        (None, None) => format!("D1 row decode: a value of another type {at}"),
    }
}

enum Decode {
    Syntax(serde_json::Error),
    Shape(String),
}

fn decode<T: DeserializeOwned>(bytes: &[u8], whole: &str) -> Result<T, Decode> {
    // One pass that tracks the path, so each type has one decoder (a tool's arguments share
    // it), at the cost of an allocation per member. Even an error serde_json calls one of syntax
    // is taken for one of shape here: [`settle`] tells them apart over the whole text.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => de.end().map(|()| value).map_err(|e| shape("", whole, &e)),
        Err(e) => Err(shape(&e.path().to_string(), whole, e.inner())),
    }
}

fn shape(path: &str, whole: &str, err: &serde_json::Error) -> Decode {
    Decode::Shape(located(path, whole, err))
}

/// An error stands as a shape error only if the whole text is JSON: decoding stops at the
/// first wrong member, and a body broken further on is a syntax error (400) whatever came
/// before. serde_json reports some shape errors (a number where an enum's name belongs) as
/// syntax errors: in a text that parses, they are shape errors too.
///
/// The text is parsed as a `Value` for this, on the error path only: unlike a pass that skips
/// values, it refuses nesting deeper than serde_json's recursion limit (128), which is a 400
/// wherever it occurs. (A decoded body has the depth of its type: it cannot nest deeper.)
fn settle(err: Decode, bytes: &[u8]) -> Decode {
    let Decode::Shape(message) = err else { return err };
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(_) => Decode::Shape(message),
        Err(e) => Decode::Syntax(e),
    }
}

/// `path: problem`, without serde_json's line and column (the path says where).
fn located(path: &str, whole: &str, err: &serde_json::Error) -> String {
    let text = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    let what = text.strip_suffix(&position).unwrap_or(&text);
    let at = if path.is_empty() || path == "." { whole } else { path };
    format!("{at}: {what}")
}

/// For an `Option<Option<T>>` field marked `#[serde(default, deserialize_with =
/// "nullable")]`: absent is `None`, `null` is `Some(None)` (a partial update's "clear").
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A JSON object read as its members in the order given (a map would sort them); a name
/// given twice keeps its first place and its last value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, T>()? {
                    match entries.iter_mut().find(|(n, _)| *n == name) {
                        Some(slot) => slot.1 = value,
                        None => entries.push((name, value)),
                    }
                }
                Ok(Entries(entries))
            }
        }

        d.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, expecting = "a JSON object")]
    struct Sample {
        name: String,
        #[serde(default)]
        tags: Vec<Tag>,
        #[serde(default, deserialize_with = "nullable")]
        note: Option<Option<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tag {
        label: String,
    }

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    fn err(bytes: &[u8]) -> (u16, &'static str, String) {
        let e = parse_json::<Sample>(JSON, bytes).unwrap_err();
        (e.status, e.code, e.message.clone())
    }

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
        let e = parse_json::<Sample>(Some("text/plain"), b"{\"name\":\"a\"}").unwrap_err();
        assert_eq!((e.status, e.code), (415, "unsupported_media_type"));
        assert_eq!(parse_json::<Sample>(None, b"{\"name\":\"a\"}").unwrap_err().status, 415);
    }

    #[test]
    fn empty_bodies_are_400() {
        assert_eq!(err(b""), (400, "invalid_json", "request body is empty".to_string()));
        assert_eq!(err(b" \n\t ").0, 400);
    }

    #[test]
    fn syntax_errors_are_400_even_after_a_member_of_the_wrong_shape() {
        let (status, code, message) = err(b"{\"name\":\"a\",}");
        assert_eq!((status, code), (400, "invalid_json"));
        assert!(message.starts_with("request body is not valid JSON: "), "{message}");
        assert_eq!(err(b"{\"name\":\"a\"} x").0, 400, "trailing characters");
        assert_eq!(err(b"nul").0, 400);
        // Truncated: the wrong type of `name` comes first, but the body is not JSON at all.
        let (status, _, message) = err(b"{\"name\":5,\"tags\":[{\"label\":");
        assert_eq!(status, 400);
        assert!(message.contains("EOF"), "{message}");
        assert_eq!(err(b"{\"name\":\"a\"").0, 400);
        assert_eq!(err(b"{\"name\":\"\xff\"}").0, 400, "invalid UTF-8");
        let deep = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(err(deep(200).as_bytes()).0, 400, "nested too deeply");
        let (status, code, _) = err(format!(r#"{{"name":{}}}"#, deep(5000)).as_bytes());
        assert_eq!((status, code), (400, "invalid_json"), "nested too deeply inside a member");
        assert_eq!(err(format!(r#"{{"name":{}}}"#, deep(100_000)).as_bytes()).0, 400);
        let (status, _, message) = err(format!(r#"{{"name":{}}}"#, deep(100)).as_bytes());
        assert_eq!((status, message.as_str()), (422, "name: invalid type: sequence, expected a string"));
    }

    #[test]
    fn wrong_shapes_are_422_naming_the_field_path() {
        let (status, code, message) = err(br#"{"name":"a","tags":[{"label":"x"},{"label":"y"},{"label":3}]}"#);
        assert_eq!((status, code), (422, "validation_failed"));
        assert_eq!(message, "tags[2].label: invalid type: integer `3`, expected a string");
        let (_, _, message) = err(br#"{"name":"a","tags":[{"label":"x"},{}]}"#);
        assert_eq!(message, "tags[1]: missing field `label`");
        let (_, _, message) = err(br#"{}"#);
        assert_eq!(message, "request body: missing field `name`");
        let (_, _, message) = err(br#"{"name":5}"#);
        assert_eq!(message, "name: invalid type: integer `5`, expected a string");
        let (_, _, message) = err(br#"{"name":"a","tags":{}}"#);
        assert!(message.starts_with("tags: invalid type: map, expected a sequence"), "{message}");
        assert_eq!(err(b"[1]"), (422, "validation_failed", "request body: expected a JSON object".to_string()));
        assert_eq!(err(br#"["a"]"#).0, 422, "not read as the fields in order");
        assert_eq!(err(b"\"a\"").0, 422);
    }

    #[test]
    fn an_enum_given_a_number_is_a_shape_error() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Kind {
            A,
        }
        #[derive(Debug, Deserialize)]
        struct WithKind {
            #[allow(dead_code)]
            kind: Kind,
        }
        let e = parse_json::<WithKind>(JSON, br#"{"kind":5}"#).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (422, "kind: expected value"));
        assert_eq!(parse_json::<WithKind>(JSON, br#"{"kind":5"#).unwrap_err().status, 400);
        assert!(parse_json::<WithKind>(JSON, br#"{"kind":"a"}"#).is_ok());
    }

    #[test]
    fn unknown_fields_are_422_naming_the_field() {
        let (status, _, message) = err(br#"{"name":"a","role":"admin"}"#);
        assert_eq!(status, 422);
        assert!(message.contains("unknown field `role`"), "{message}");
        let (status, _, message) = err(br#"{"name":"a","tags":[{"label":"x"},{"label":"y","z":1}]}"#);
        assert_eq!(status, 422);
        assert!(message.starts_with("tags[1]") && message.contains("unknown field `z`"), "{message}");
    }

    #[test]
    fn absent_and_null_are_told_apart_where_it_matters() {
        let absent = parse_json::<Sample>(JSON, br#"{"name":"a"}"#).unwrap();
        assert_eq!((absent.name.as_str(), absent.tags.len(), absent.note), ("a", 0, None));
        let null = parse_json::<Sample>(JSON, br#"{"name":"a","note":null}"#).unwrap();
        assert_eq!(null.note, Some(None));
        let set = parse_json::<Sample>(JSON, br#"{"name":"a","note":"n","tags":[{"label":"x"}]}"#).unwrap();
        assert_eq!((set.note, set.tags[0].label.as_str()), (Some(Some("n".to_string())), "x"));
        assert_eq!(err(br#"{"name":"a","note":7}"#).0, 422);
    }

    #[test]
    fn config_objects_keep_their_order_and_name_bad_members() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Limit {
            per_minute: u32,
        }
        let read: Entries<Limit> =
            parse_config(r#"{"b":{"per_minute":5},"a":{"per_minute":1},"b":{"per_minute":7}}"#).unwrap();
        assert_eq!(
            read.0,
            vec![("b".to_string(), Limit { per_minute: 7 }), ("a".to_string(), Limit { per_minute: 1 })]
        );
        let bad = parse_config::<Entries<Limit>>(r#"{"a":{"per_minute":-1}}"#).unwrap_err();
        assert!(bad.starts_with("a.per_minute: invalid value: integer `-1`"), "{bad}");
        let bad = parse_config::<Entries<Limit>>(r#"[]"#).unwrap_err();
        assert_eq!(bad, "the value: invalid type: sequence, expected a JSON object");
        assert!(parse_config::<Entries<Limit>>("{").unwrap_err().starts_with("not valid JSON: "));
    }
}
