//! A request's reads for the user it acts for, named as data: authentication sends them in
//! the session check's D1 round trip when the credential names its user before any lookup
//! (an access token), and after the check otherwise (an API key). Reads only: nothing may be
//! written before the credential is known to be live.

use super::conversations::{self, Messages};
use super::{admin, api_keys, memories, quotas, tasks, Db};
use crate::http::AppError;
use crate::store::D1PreparedStatement;
use edgechat_core::agent::tasks::TaskFilter;
use edgechat_core::cursor::Cursor;

/// One read; its results come back in order (one result each, two for a conversation with
/// messages other than [`Messages::None`]).
pub enum Read<'a> {
    /// A page of the user's conversations after `after` (`fetch` rows).
    ConversationsAfter { after: &'a Cursor, fetch: u32 },
    /// The user's conversations matching the full-text query `fts`.
    ConversationSearch { fts: &'a str, fetch: u32, offset: u64 },
    /// The user's conversation and some of its messages ([`conversations::find_with_messages`]).
    Conversation { conversation_id: &'a str, messages: Messages<'a>, max_depth: u64 },
    /// The user's usage since `since` (ms).
    Usage { since: u64 },
    /// The tokens counted for the user's `day`.
    TokensUsed { day: &'a str },
    /// The user's live API keys.
    ApiKeys,
    /// One of the user's tasks.
    Task { task_id: &'a str },
    /// A page of the user's tasks matching `filter` ([`tasks::list_statement`]).
    Tasks { filter: TaskFilter, after: Option<&'a Cursor>, fetch: u32 },
    /// A page of the user's memories.
    Memories { after: Option<&'a Cursor>, fetch: u32 },
    /// The user's memories matching the full-text query `fts`.
    MemorySearch { fts: &'a str, fetch: u32, offset: u64 },
}

/// The statements of `reads`, for `user_id`, in order.
pub fn statements(db: &Db, user_id: &str, reads: &[Read<'_>]) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut out = Vec::with_capacity(reads.len());
    for read in reads {
        match read {
            Read::ConversationsAfter { after, fetch } => {
                out.push(conversations::list_statement(db, user_id, Some(after), *fetch)?)
            }
            Read::ConversationSearch { fts, fetch, offset } => {
                out.push(conversations::search_statement(db, user_id, fts, *fetch, *offset)?)
            }
            Read::Conversation { conversation_id, messages, max_depth } => {
                out.extend(conversations::find_with_messages(db, conversation_id, user_id, *messages, *max_depth)?)
            }
            Read::Usage { since } => out.push(admin::user_usage_statement(db, user_id, *since)?),
            Read::TokensUsed { day } => out.push(quotas::tokens_used_statement(db, user_id, day)?),
            Read::ApiKeys => out.push(api_keys::list_statement(db, user_id)?),
            Read::Task { task_id } => out.push(tasks::find_statement(db, task_id, user_id)?),
            Read::Tasks { filter, after, fetch } => {
                out.push(tasks::list_statement(db, user_id, *filter, *after, *fetch)?)
            }
            Read::Memories { after, fetch } => out.push(memories::list_statement(db, user_id, *after, *fetch)?),
            Read::MemorySearch { fts, fetch, offset } => {
                out.push(memories::search_statement(db, user_id, fts, *fetch, *offset)?)
            }
        }
    }
    Ok(out)
}
