//! Usage records in D1: one row per model call, written after the call.

use super::{num, opt_text, text, Db};
use crate::http::AppError;
use crate::store::D1PreparedStatement;

const INSERT_USAGE: &str = "INSERT INTO usage_records (usage_record_id, user_id, api_key_id, source, model, provider, \
     status, prompt_tokens, completion_tokens, is_usage_estimated, is_cache_hit, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Everything a user's usage is deleted with.
pub const DELETE_ALL_OF_USER: &str = "DELETE FROM usage_records WHERE user_id = ?1";

pub struct UsageRecord<'a> {
    pub usage_record_id: &'a str,
    pub user_id: &'a str,
    pub api_key_id: Option<&'a str>,
    pub source: &'a str,
    pub model: &'a str,
    pub provider: Option<&'a str>,
    pub status: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub is_usage_estimated: bool,
    pub is_cache_hit: bool,
    pub created_at: u64,
}

/// The insert, for callers that batch it with other writes.
pub fn insert_statement(db: &Db, r: &UsageRecord<'_>) -> Result<D1PreparedStatement, AppError> {
    db.stmt(
        INSERT_USAGE,
        &[
            text(r.usage_record_id),
            text(r.user_id),
            opt_text(r.api_key_id),
            text(r.source),
            text(r.model),
            opt_text(r.provider),
            text(r.status),
            num(r.prompt_tokens),
            num(r.completion_tokens),
            num(u64::from(r.is_usage_estimated)),
            num(u64::from(r.is_cache_hit)),
            num(r.created_at),
        ],
    )
}
