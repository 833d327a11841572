//! The rules of a turn that outlives its connection: where a reader resumes (`Last-Event-ID`
//! or `?after=`), the stream token that lets a header-less reader (the browser's
//! `EventSource`) read one turn, what an `Idempotency-Key` may be and what makes two sends the
//! same, and what a turn's recorded events say when the object running it died.

use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long a send's `Idempotency-Key` names its turn.
pub const IDEMPOTENCY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// How long a finished turn's events stay available to readers that resume.
pub const EVENTS_KEPT_MS: u64 = IDEMPOTENCY_WINDOW_MS;
/// How long a turn's stream token lets its owner read it.
pub const STREAM_TOKEN_TTL_SECONDS: u64 = 60 * 60;
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

fn stream_mac(secret: &[u8], user_id: &str, message_id: &str, expires_at: u64) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    // Domain-separated from every other use of the secret (a JWT's signature is over base64 text).
    for part in ["edgechat stream token v1", user_id, message_id, &expires_at.to_string()] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    Some(mac)
}

/// A token that lets `user_id` read the turn answering with `message_id` until `expires_at`
/// (Unix seconds), and nothing else: `{user_id}.{expires_at}.{mac}`.
pub fn stream_token(secret: &[u8], user_id: &str, message_id: &str, expires_at: u64) -> String {
    let tag = stream_mac(secret, user_id, message_id, expires_at).map(|m| m.finalize().into_bytes().to_vec());
    format!("{user_id}.{expires_at}.{}", URL_SAFE_NO_PAD.encode(tag.unwrap_or_default()))
}

/// The user a stream token for `message_id` was made for, if it is genuine and unexpired at
/// `now` (Unix seconds); the comparison is constant-time.
pub fn check_stream_token<'t>(secret: &[u8], token: &'t str, message_id: &str, now: u64) -> Option<&'t str> {
    let mut parts = token.splitn(3, '.');
    let (user_id, expires_at, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let expires_at: u64 = expires_at.parse().ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mac = stream_mac(secret, user_id, message_id, expires_at)?;
    (mac.verify_slice(&tag).is_ok() && now < expires_at).then_some(user_id)
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
    fn a_stream_token_reads_one_turn_of_one_user_until_it_expires() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = stream_token(secret, "usr_a", "msg_1", 1000);
        assert_eq!(check_stream_token(secret, &token, "msg_1", 999), Some("usr_a"));
        assert_eq!(check_stream_token(secret, &token, "msg_1", 1000), None, "expired");
        assert_eq!(check_stream_token(secret, &token, "msg_2", 999), None, "another turn");
        assert_eq!(check_stream_token(b"another secret, just as long 0123", &token, "msg_1", 999), None);
        let forged = token.replacen("usr_a", "usr_b", 1);
        assert_eq!(check_stream_token(secret, &forged, "msg_1", 999), None, "another user");
        let later = token.replacen("1000", "9999", 1);
        assert_eq!(check_stream_token(secret, &later, "msg_1", 999), None, "a later expiry");
        for bad in ["", "usr_a", "usr_a.1000", "usr_a.x.y", "usr_a.1000.!!!"] {
            assert_eq!(check_stream_token(secret, bad, "msg_1", 0), None, "{bad:?}");
        }
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
