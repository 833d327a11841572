//! Memories, notes about the user: the tool inputs and REST body, their validation, the
//! stored row and the view.

use crate::ids::MemoryId;
use crate::time::rfc3339;
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// Longest memory, in characters.
pub const CONTENT_CHARS: usize = 2000;
/// Most memories one `recall` call returns.
pub const MAX_RECALL: u32 = 20;

/// `remember` and `POST /api/v1/memories`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Remember {
    /// The note about the user to keep, 1 to 2000 characters.
    pub content: String,
}

/// `recall`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Recall {
    /// Words to look for in the user's notes (every word must match; the last may be a prefix).
    pub query: String,
    /// How many, 1 to 20 (default 10), best match first.
    pub limit: Option<u32>,
}

/// `forget`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Forget {
    /// The memory's id (`mem_...`), as remember or recall gave it.
    pub memory_id: String,
}

impl Remember {
    /// The content, trimmed: not empty, at most [`CONTENT_CHARS`] characters.
    pub fn validate(self) -> Result<String, ApiError> {
        let content = self.content.trim();
        if content.is_empty() {
            return Err(ApiError::validation("content: must not be empty"));
        }
        if content.chars().count() > CONTENT_CHARS {
            return Err(ApiError::validation(format!("content: must be at most {CONTENT_CHARS} characters")));
        }
        Ok(content.to_string())
    }
}

impl Recall {
    /// The FTS5 expression (safe: `search::fts_query`) and the limit.
    pub fn validate(self) -> Result<(String, u32), ApiError> {
        let fts =
            crate::search::fts_query(&self.query).map_err(|e| ApiError::validation(format!("query: {}", e.message)))?;
        let limit = self.limit.unwrap_or(10);
        if !(1..=MAX_RECALL).contains(&limit) {
            return Err(ApiError::validation(format!("limit: must be from 1 to {MAX_RECALL}")));
        }
        Ok((fts, limit))
    }
}

impl Forget {
    pub fn validate(self) -> Result<MemoryId, ApiError> {
        MemoryId::parse(&self.memory_id).ok_or_else(|| ApiError::validation("memory_id: not a memory id (`mem_...`)"))
    }
}

/// A memory as stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Memory {
    pub memory_id: MemoryId,
    pub content: String,
    pub created_at: u64,
}

#[derive(Debug, Serialize)]
pub struct MemoryView<'a> {
    pub memory_id: &'a str,
    pub content: &'a str,
    pub created_at: String,
}

impl Memory {
    pub fn view(&self) -> MemoryView<'_> {
        MemoryView { memory_id: &self.memory_id, content: &self.content, created_at: rfc3339(self.created_at) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_bounded() {
        assert_eq!(Remember { content: " likes tea \n".into() }.validate().unwrap(), "likes tea");
        assert_eq!(Remember { content: "é".repeat(CONTENT_CHARS) }.validate().unwrap().chars().count(), CONTENT_CHARS);
        for bad in ["", "  \n", &"x".repeat(CONTENT_CHARS + 1)] {
            let err = Remember { content: bad.into() }.validate().unwrap_err();
            assert_eq!(err.status, 422);
            assert!(err.message.starts_with("content"), "{}", err.message);
        }
    }

    #[test]
    fn recall_makes_a_safe_query_and_bounds_the_limit() {
        let r = |q: &str, limit| Recall { query: q.into(), limit }.validate();
        assert_eq!(r("tea OR coffee", None).unwrap(), (r#""tea" "OR" "coffee"*"#.to_string(), 10));
        assert_eq!(r("tea", Some(20)).unwrap().1, 20);
        for (q, limit) in [("", None), ("***", None), ("tea", Some(0)), ("tea", Some(21))] {
            let err = r(q, limit).unwrap_err();
            assert_eq!(err.status, 422, "{q:?} {limit:?}");
        }
        assert!(r("\"", None).unwrap_err().message.starts_with("query"));
    }

    #[test]
    fn forget_takes_only_a_memory_id() {
        let id = MemoryId::new([4; 16]);
        assert_eq!(Forget { memory_id: id.to_string() }.validate().unwrap(), id);
        for bad in ["", "mem_x", "tsk_AAAAAAAAAAAAAAAAAAAAAA", "mem_'; DROP TABLE memories;--"] {
            assert_eq!(Forget { memory_id: bad.into() }.validate().unwrap_err().status, 422, "{bad}");
        }
    }
}
