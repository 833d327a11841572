//! edgechat-core: the pure domain of edgechat — no `worker` types, no clock, no randomness.
//!
//! The Worker crate turns Cloudflare bindings into calls into this crate; everything here is
//! unit-tested natively with `cargo test`.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod agent;
pub mod answer;
pub mod body;
pub mod chat;
pub mod config;
pub mod conversations;
pub mod cookie;
pub mod cors;
pub mod cursor;
pub mod embeddings;
pub mod error;
pub mod gateway;
pub mod ids;
pub mod llm;
pub mod log;
pub mod mcp;
pub mod messages;
pub mod password;
pub mod plans;
pub mod request_id;
pub mod responses;
pub mod routes;
pub mod scopes;
pub mod search;
pub mod secret;
pub mod security;
pub mod sql_args;
pub mod stripe;
pub mod throttle;
pub mod time;
pub mod titles;
pub mod token;
pub mod turns;
pub mod url;
pub mod views;

pub use error::ApiError;
// The edge decodes rows and renders views through the same serde as the types' derives.
pub use serde;
pub use serde_json;

/// The version reported by `GET /health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
