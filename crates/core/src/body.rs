//! Request bodies: the size cap, the content type, and JSON decoding with errors that say
//! which part of the input is wrong (400 for syntax, 415 for type, 422 for shape).

use crate::ApiError;
use serde::de::DeserializeOwned;

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
/// 415 unless the content type is JSON; 400 for empty or malformed JSON; 422 when the JSON
/// is well formed but has the wrong shape (a missing, mistyped or unknown field).
pub fn parse_json<T: DeserializeOwned>(content_type: Option<&str>, bytes: &[u8]) -> Result<T, ApiError> {
    if !is_json_content_type(content_type) {
        return Err(ApiError::unsupported_media_type());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_json", "request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::validation(data_error_message(&e)),
            Category::Syntax | Category::Eof | Category::Io => ApiError::invalid_json(e),
        }
    })
}

/// serde's message without the " at line L column C" suffix when the body is one line.
fn data_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) if e.line() == 1 => full[..i].to_string(),
        _ => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
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
        assert!(unknown.message.contains("unknown field `role`"), "{}", unknown.message);
        assert_eq!(parse_json::<Sample>(JSON, b"{\"name\":5}").unwrap_err().status, 422);
        assert_eq!(parse_json::<Sample>(JSON, b"{}").unwrap_err().status, 422);
        assert_eq!(parse_json::<Sample>(JSON, b"{\"name\":\"a\"}").unwrap().name, "a");
    }
}
