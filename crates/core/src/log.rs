//! Structured log lines: one JSON line per request, and one per logged failure cause.
//!
//! Only metadata is ever logged: never bodies, passwords, tokens, keys or message content.

use serde::Serialize;

/// The one line written for every request.
#[derive(Debug, Serialize)]
pub struct RequestLog<'a> {
    pub level: &'static str,
    pub msg: &'static str,
    pub request_id: &'a str,
    pub method: &'a str,
    /// The matched route pattern (ids elided), or null when nothing matched.
    pub route: Option<&'static str>,
    pub status: u16,
    pub duration_ms: u64,
    /// Left out when there is none, as is `error_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    /// Rows D1 reported reading and writing for this request.
    pub d1_rows_read: u64,
    pub d1_rows_written: u64,
    /// The isolate's wasm linear memory when the request ended (it only grows: a leak shows).
    pub wasm_memory_kib: u64,
}

impl RequestLog<'_> {
    pub fn to_line(&self) -> String {
        line(self)
    }
}

/// A line recording the cause of a 5xx, written once, by the edge.
pub fn failure_line(request_id: &str, context: &str, cause: &str) -> String {
    #[derive(Serialize)]
    struct Failure<'a> {
        level: &'static str,
        msg: &'static str,
        request_id: &'a str,
        context: &'a str,
        cause: &'a str,
    }
    line(&Failure { level: "error", msg: "failure", request_id, context, cause })
}

/// The line closing a chat turn: how it ended, never what was said.
#[derive(Debug, Serialize)]
pub struct TurnLog<'a> {
    pub level: &'static str,
    pub msg: &'static str,
    pub request_id: &'a str,
    pub user_id: &'a str,
    pub status: &'a str,
    pub model: &'a str,
    pub provider: Option<&'a str>,
    pub time_to_first_token_ms: Option<u64>,
    pub duration_ms: u64,
    pub completion_tokens: u64,
    pub malformed_chunks: u32,
    /// Model calls made (more than one when the model called tools).
    pub steps: u32,
    pub tool_calls: u32,
    pub error_code: Option<&'a str>,
}

impl TurnLog<'_> {
    pub fn to_line(&self) -> String {
        line(self)
    }
}

/// One JSON line (serde_json escapes newlines inside strings, so it stays one line).
fn line(value: &impl Serialize) -> String {
    // Strings and integers only: serializing cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_request_line_is_one_json_object_with_the_documented_fields() {
        let line = RequestLog {
            level: "info",
            msg: "request",
            request_id: "r1",
            method: "GET",
            route: Some("/health"),
            status: 200,
            duration_ms: 3,
            user_id: None,
            error_code: None,
            d1_rows_read: 2,
            d1_rows_written: 0,
            wasm_memory_kib: 1088,
        }
        .to_line();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["route"], "/health");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 3);
        assert!(v.get("user_id").is_none());
        assert_eq!(v["d1_rows_read"], 2);
    }

    #[test]
    fn a_turn_line_has_nulls_for_what_is_unknown() {
        let line = TurnLog {
            level: "info",
            msg: "turn",
            request_id: "r",
            user_id: "usr_1",
            status: "complete",
            model: "sim-small",
            provider: None,
            time_to_first_token_ms: Some(12),
            duration_ms: 40,
            completion_tokens: 3,
            malformed_chunks: 0,
            steps: 1,
            tool_calls: 0,
            error_code: None,
        }
        .to_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!((v["provider"].is_null(), v["error_code"].is_null()), (true, true));
        assert_eq!((v["time_to_first_token_ms"].as_u64(), v["status"].as_str()), (Some(12), Some("complete")));
        assert_eq!(v.as_object().unwrap().len(), 14);
    }

    #[test]
    fn a_failure_line_escapes_its_cause() {
        let v: Value = serde_json::from_str(&failure_line("r", "d1", "bad \"thing\"\nhappened")).unwrap();
        assert_eq!(v["cause"], "bad \"thing\"\nhappened");
        assert_eq!(v["level"], "error");
    }
}
