//! The rules of a turn that outlives its connection: where a reader resumes (`Last-Event-ID`
//! or `?after=`), what an `Idempotency-Key` may be and what makes two sends the same, and what
//! a turn's recorded events say when the object running it died.

use crate::ApiError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long a send's `Idempotency-Key` names its turn.
pub const IDEMPOTENCY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// How long a finished turn's events stay available to readers that resume.
pub const EVENTS_KEPT_MS: u64 = IDEMPOTENCY_WINDOW_MS;
/// Longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 255;

fn invalid_event_id(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_event_id", message)
}

/// The last event a resuming reader has: `Last-Event-ID` when sent, else `?after=`, else 0
/// (from the start). 400 for anything but a non-negative integer.
pub fn resume_point(last_event_id: Option<&str>, after: Option<&str>) -> Result<u64, ApiError> {
    let (name, raw) = match (last_event_id, after) {
        (Some(v), _) => ("Last-Event-ID", v),
        (None, Some(v)) => ("after", v),
        (None, None) => return Ok(0),
    };
    let raw = raw.trim();
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) || raw.len() > 15 {
        return Err(invalid_event_id(format!("{name} must be a non-negative event id, e.g. 3")));
    }
    raw.parse().map_err(|_| invalid_event_id(format!("{name} must be a non-negative event id")))
}

/// 400 when a reader claims to have seen events the turn has not sent (`last` is its latest).
pub fn check_resume_point(after: u64, last: u64) -> Result<(), ApiError> {
    if after > last {
        return Err(invalid_event_id(format!("event {after} does not exist: the latest event of this turn is {last}")));
    }
    Ok(())
}

/// A valid `Idempotency-Key`: 1 to 255 visible ASCII characters; 400 otherwise.
pub fn idempotency_key(raw: &str) -> Result<&str, ApiError> {
    if raw.is_empty() || raw.len() > MAX_KEY_LEN || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(raw)
}

/// What makes two sends the same request: the path they were sent to and their exact body.
pub fn fingerprint(path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// 422 for a key reused with another request.
pub fn key_reused() -> ApiError {
    ApiError::new(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request in the last 24 hours",
    )
}

/// 409 for a key whose first request is still being admitted.
pub fn key_in_flight() -> ApiError {
    ApiError::conflict("idempotency_key_in_use", "a request with this Idempotency-Key is still being processed")
}

/// One recorded event of a turn: its id, name and data (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Recorded {
    pub event_id: u64,
    pub name: String,
    pub data: String,
}

#[derive(Deserialize)]
struct DeltaData {
    text: String,
}

/// The answer's text as its recorded `delta` events carried it.
pub fn text_of(events: &[Recorded]) -> String {
    events
        .iter()
        .filter(|e| e.name == "delta")
        .filter_map(|e| serde_json::from_str::<DeltaData>(&e.data).ok())
        .map(|d| d.text)
        .collect()
}

/// Whether the recorded events include the turn's last (`done` or `error`).
pub fn is_final(name: &str) -> bool {
    matches!(name, "done" | "error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_point_takes_last_event_id_before_after() {
        assert_eq!(resume_point(None, None).unwrap(), 0);
        assert_eq!(resume_point(Some("3"), Some("9")).unwrap(), 3);
        assert_eq!(resume_point(None, Some("7")).unwrap(), 7);
        assert_eq!(resume_point(Some(" 4 "), None).unwrap(), 4);
    }

    #[test]
    fn resume_point_refuses_what_is_not_an_event_id() {
        for bad in ["-1", "abc", "", "1.5", "3e2", "+3", "99999999999999999999"] {
            let err = resume_point(Some(bad), None).unwrap_err();
            assert_eq!((err.status, err.code), (400, "invalid_event_id"), "{bad:?}");
            assert_eq!(resume_point(None, Some(bad)).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn a_resume_point_beyond_the_last_event_is_refused() {
        assert!(check_resume_point(5, 5).is_ok());
        assert!(check_resume_point(0, 0).is_ok());
        let err = check_resume_point(6, 5).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("latest event of this turn is 5"), "{}", err.message);
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255() {
        assert!(idempotency_key("a").is_ok());
        assert!(idempotency_key(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(256)] {
            assert_eq!(idempotency_key(bad).unwrap_err().code, "invalid_idempotency_key", "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_differ_by_path_and_by_body() {
        let a = fingerprint("/p", b"{\"content\":\"hi\"}");
        assert_eq!(a, fingerprint("/p", b"{\"content\":\"hi\"}"));
        assert_ne!(a, fingerprint("/q", b"{\"content\":\"hi\"}"));
        assert_ne!(a, fingerprint("/p", b"{\"content\":\"ho\"}"));
        // The separator keeps a path's tail from passing for the body's head.
        assert_ne!(fingerprint("/p", b"x"), fingerprint("/px", b""));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn text_of_joins_the_deltas_only() {
        let e = |id, name: &str, data: &str| Recorded { event_id: id, name: name.into(), data: data.into() };
        let events = [
            e(1, "message", r#"{"text":"not this"}"#),
            e(2, "delta", r#"{"text":"Hel"}"#),
            e(3, "tool_call", r#"{"text":"nor this"}"#),
            e(4, "delta", r#"{"text":"lo \"you\""}"#),
            e(5, "delta", "not json"),
        ];
        assert_eq!(text_of(&events), "Hello \"you\"");
        assert!(is_final("done") && is_final("error") && !is_final("delta"));
    }
}
