//! Response envelopes shared by several endpoints: the list page and the health answers.

use serde::Serialize;

/// A page of a list: `{"data": [...], "next_cursor": "..."|null}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: T,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(data: T, next_cursor: Option<String>) -> Self {
        Self { data, next_cursor }
    }
}

/// `GET /health`.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// `GET /api/v1/limits`: what the conversation API refuses beyond.
#[derive(Debug, Serialize)]
pub struct Limits {
    /// Longest message content, in UTF-8 bytes.
    pub message_bytes: usize,
    pub title_chars: usize,
    pub system_prompt_bytes: usize,
    /// Deepest branch, in messages.
    pub messages_per_conversation: u64,
}

/// `GET /health/ready` when every check passed.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize)]
pub struct Checks {
    pub d1: &'static str,
    pub kv: &'static str,
    pub config: &'static str,
}

impl Ready {
    pub const OK: Ready = Ready { status: "ok", checks: Checks { d1: "ok", kv: "ok", config: "ok" } };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, to_value};

    #[test]
    fn pages_and_health_answers_have_the_documented_shapes() {
        assert_eq!(to_value(Page::new([1, 2], None)).unwrap(), json!({"data": [1, 2], "next_cursor": null}));
        assert_eq!(
            to_value(Page::new(Vec::<u8>::new(), Some("c".into()))).unwrap(),
            json!({"data": [], "next_cursor": "c"})
        );
        assert_eq!(
            to_value(Ready::OK).unwrap(),
            json!({"status": "ok", "checks": {"d1": "ok", "kv": "ok", "config": "ok"}})
        );
        assert_eq!(to_value(Health { status: "ok", version: "1" }).unwrap(), json!({"status": "ok", "version": "1"}));
    }
}
