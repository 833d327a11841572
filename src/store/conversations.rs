//! Conversations and messages in D1: owner-scoped reads and writes, keyset pages, full-text
//! search, and the per-user counters (limits, cache version) kept in the same transactions.

use super::{num, opt_text, rows, signed, text, Db};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::conversations::{Conversation, Message};
use edgechat_core::cursor::Cursor;

// The insert happens only under the user's limit; the counter moves only if it happened.
// A D1 batch is one serialized transaction, so the check and the insert cannot interleave.
const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
     (conversation_id, user_id, title, model, system_prompt, tools, message_count, created_at, updated_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?9, ?6, ?7, ?7 \
     WHERE (SELECT conversation_count FROM users WHERE user_id = ?2) < ?8 RETURNING conversation_id";
const COUNT_NEW_CONVERSATION: &str = "UPDATE users SET conversation_count = conversation_count + 1, \
     cache_version = cache_version + 1 \
     WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM conversations WHERE conversation_id = ?2)";
// Imported messages arrive as one JSON array parameter (the body cap bounds its size).
const INSERT_IMPORTED_MESSAGES: &str = "INSERT INTO messages \
     (message_id, conversation_id, user_id, parent_id, role, content, status, created_at) \
     SELECT json_extract(value, '$.message_id'), ?1, ?2, json_extract(value, '$.parent_id'), \
     json_extract(value, '$.role'), json_extract(value, '$.content'), 'complete', json_extract(value, '$.created_at') \
     FROM json_each(?3) WHERE EXISTS (SELECT 1 FROM conversations WHERE conversation_id = ?1 AND user_id = ?2)";
const SELECT_CONVERSATION: &str =
    "SELECT conversation_id, title, model, system_prompt, tools, message_count, created_at, updated_at \
     FROM conversations WHERE conversation_id = ?1 AND user_id = ?2";
const LIST_FIRST_PAGE: &str =
    "SELECT conversation_id, title, model, system_prompt, tools, message_count, created_at, updated_at \
     FROM conversations WHERE user_id = ?1 ORDER BY updated_at DESC, conversation_id DESC LIMIT ?2";
const LIST_AFTER: &str =
    "SELECT conversation_id, title, model, system_prompt, tools, message_count, created_at, updated_at \
     FROM conversations WHERE user_id = ?1 AND (updated_at < ?2 OR (updated_at = ?2 AND conversation_id < ?3)) \
     ORDER BY updated_at DESC, conversation_id DESC LIMIT ?4";
// Best rank over title and message matches; titles weigh double (bm25: lower is better).
const SEARCH: &str = "WITH hits AS ( \
       SELECT conversation_id, bm25(conversations_fts) * 2.0 AS score FROM conversations_fts \
       WHERE conversations_fts MATCH ?2 AND user_id = ?1 \
       UNION ALL \
       SELECT conversation_id, bm25(messages_fts) AS score FROM messages_fts \
       WHERE messages_fts MATCH ?2 AND user_id = ?1) \
     SELECT c.conversation_id, c.title, c.model, c.system_prompt, c.tools, c.message_count, c.created_at, c.updated_at \
     FROM hits h JOIN conversations c ON c.conversation_id = h.conversation_id AND c.user_id = ?1 \
     GROUP BY c.conversation_id ORDER BY MIN(h.score), c.conversation_id LIMIT ?3 OFFSET ?4";
const UPDATE_CONVERSATION: &str =
    "UPDATE conversations SET title = ?3, model = ?4, system_prompt = ?5, tools = ?7, updated_at = ?6 \
     WHERE conversation_id = ?1 AND user_id = ?2 RETURNING conversation_id";
const BUMP_CACHE_VERSION: &str = "UPDATE users SET cache_version = cache_version + 1 WHERE user_id = ?1";
const UNCOUNT_CONVERSATION: &str = "UPDATE users SET conversation_count = conversation_count - 1, \
     cache_version = cache_version + 1 \
     WHERE user_id = ?2 AND EXISTS (SELECT 1 FROM conversations WHERE conversation_id = ?1 AND user_id = ?2)";
const DELETE_MESSAGES: &str = "DELETE FROM messages WHERE conversation_id = ?1 AND user_id = ?2";
const DELETE_CONVERSATION: &str =
    "DELETE FROM conversations WHERE conversation_id = ?1 AND user_id = ?2 RETURNING conversation_id";
const LIST_MESSAGES_FIRST: &str =
    "SELECT message_id, conversation_id, parent_id, role, content, status, model, provider, \
     prompt_tokens, completion_tokens, is_usage_estimated, time_to_first_token_ms, duration_ms, created_at, steps \
     FROM messages WHERE conversation_id = ?1 AND user_id = ?2 ORDER BY created_at, message_id LIMIT ?3";
const LIST_MESSAGES_AFTER: &str =
    "SELECT message_id, conversation_id, parent_id, role, content, status, model, provider, \
     prompt_tokens, completion_tokens, is_usage_estimated, time_to_first_token_ms, duration_ms, created_at, steps \
     FROM messages WHERE conversation_id = ?1 AND user_id = ?2 \
     AND (created_at > ?3 OR (created_at = ?3 AND message_id > ?4)) ORDER BY created_at, message_id LIMIT ?5";
// The branch from the root to one message, walking parent links (bounded by ?4).
/// The root-to-leaf path query from the leaf the `$leaf` condition picks, `$depth` being the
/// placeholder of the depth limit.
macro_rules! path_query {
    ($leaf:literal, $depth:literal) => {
        concat!(
            "WITH RECURSIVE path (message_id, parent_id, depth) AS ( \
             SELECT message_id, parent_id, 0 FROM messages WHERE ",
            $leaf,
            " UNION ALL \
             SELECT m.message_id, m.parent_id, p.depth + 1 FROM messages m JOIN path p ON m.message_id = p.parent_id \
             WHERE p.depth < ",
            $depth,
            ") SELECT m.message_id, m.conversation_id, m.parent_id, m.role, m.content, m.status, m.model, m.provider, \
             m.prompt_tokens, m.completion_tokens, m.is_usage_estimated, m.time_to_first_token_ms, m.duration_ms, \
             m.created_at, m.steps FROM path JOIN messages m ON m.message_id = path.message_id ORDER BY path.depth DESC"
        )
    };
}
const MESSAGE_PATH: &str = path_query!("message_id = ?1 AND conversation_id = ?2 AND user_id = ?3", "?4");
// The same from the conversation's newest message.
const LATEST_PATH: &str = path_query!(
    "message_id = (SELECT message_id FROM messages WHERE conversation_id = ?1 AND user_id = ?2 \
     ORDER BY created_at DESC, message_id DESC LIMIT 1)",
    "?3"
);

/// Everything a user owns in this module, deleted with their account.
pub const DELETE_ALL_OF_USER: &[&str] =
    &["DELETE FROM messages WHERE user_id = ?1", "DELETE FROM conversations WHERE user_id = ?1"];

pub struct NewConversation<'a> {
    pub conversation_id: &'a str,
    pub user_id: &'a str,
    pub title: &'a str,
    pub model: &'a str,
    pub system_prompt: Option<&'a str>,
    /// The stored tool list (`encode_tools`); None for the default.
    pub tools: Option<&'a str>,
    /// Imported messages as a JSON array of {message_id, parent_id, role, content, created_at}.
    pub messages_json: Option<String>,
    pub message_count: u64,
    pub now: u64,
}

/// Creates the conversation with its imported messages, all or nothing. False when the
/// user is at `max_conversations`.
pub async fn create(db: &Db, c: &NewConversation<'_>, max_conversations: u64) -> Result<bool, AppError> {
    let mut statements = vec![
        db.stmt(
            INSERT_CONVERSATION,
            &[
                text(c.conversation_id),
                text(c.user_id),
                text(c.title),
                text(c.model),
                opt_text(c.system_prompt),
                num(c.message_count),
                num(c.now),
                num(max_conversations),
                opt_text(c.tools),
            ],
        )?,
        db.stmt(COUNT_NEW_CONVERSATION, &[text(c.user_id), text(c.conversation_id)])?,
    ];
    if let Some(json) = &c.messages_json {
        statements.push(db.stmt(INSERT_IMPORTED_MESSAGES, &[text(c.conversation_id), text(c.user_id), text(json)])?);
    }
    let results = db.batch("create conversation", statements).await?;
    Ok(super::returned_a_row(results.first()))
}

pub async fn find(db: &Db, conversation_id: &str, user_id: &str) -> Result<Option<Conversation>, AppError> {
    db.first("find conversation", db.stmt(SELECT_CONVERSATION, &[text(conversation_id), text(user_id)])?).await
}

/// One page of the user's conversations, most recently updated first (`limit + 1` rows
/// fetched so the caller can tell whether there is a next page).
pub async fn list(db: &Db, user_id: &str, after: Option<&Cursor>, fetch: u32) -> Result<Vec<Conversation>, AppError> {
    db.all("list conversations", list_statement(db, user_id, after, fetch)?).await
}

/// The query behind [`list`], to batch with others.
pub fn list_statement(
    db: &Db,
    user_id: &str,
    after: Option<&Cursor>,
    fetch: u32,
) -> Result<D1PreparedStatement, AppError> {
    match after {
        None => db.stmt(LIST_FIRST_PAGE, &[text(user_id), num(fetch.into())]),
        Some(c) => db.stmt(LIST_AFTER, &[text(user_id), signed(c.key), text(&c.id), num(fetch.into())]),
    }
}

/// Ranked search over titles and message text; `fts` must come from `search::fts_query`. To
/// batch with others; its rows decode as [`Conversation`]s.
pub fn search_statement(
    db: &Db,
    user_id: &str,
    fts: &str,
    fetch: u32,
    offset: u64,
) -> Result<D1PreparedStatement, AppError> {
    db.stmt(SEARCH, &[text(user_id), text(fts), num(fetch.into()), num(offset)])
}

/// Conversations a batched statement returned.
pub fn conversations(result: Option<&D1Result>) -> Result<Vec<Conversation>, AppError> {
    rows("conversations", result)
}

pub struct ConversationUpdate<'a> {
    pub title: &'a str,
    pub model: &'a str,
    pub system_prompt: Option<&'a str>,
    pub tools: Option<&'a str>,
    pub now: u64,
}

pub async fn update(
    db: &Db,
    conversation_id: &str,
    user_id: &str,
    u: &ConversationUpdate<'_>,
) -> Result<bool, AppError> {
    let results = db
        .batch(
            "update conversation",
            vec![
                db.stmt(
                    UPDATE_CONVERSATION,
                    &[
                        text(conversation_id),
                        text(user_id),
                        text(u.title),
                        text(u.model),
                        opt_text(u.system_prompt),
                        num(u.now),
                        opt_text(u.tools),
                    ],
                )?,
                db.stmt(BUMP_CACHE_VERSION, &[text(user_id)])?,
            ],
        )
        .await?;
    Ok(super::returned_a_row(results.first()))
}

const REPLACE_TITLE: &str =
    "UPDATE conversations SET title = ?4 WHERE conversation_id = ?1 AND user_id = ?2 AND title = ?3 RETURNING conversation_id";

/// Sets a generated title unless the title changed since `expected` was read (a rename wins).
pub async fn replace_title(
    db: &Db,
    conversation_id: &str,
    user_id: &str,
    expected: &str,
    title: &str,
) -> Result<bool, AppError> {
    let results = db
        .batch(
            "replace title",
            vec![
                db.stmt(REPLACE_TITLE, &[text(conversation_id), text(user_id), text(expected), text(title)])?,
                db.stmt(BUMP_CACHE_VERSION, &[text(user_id)])?,
            ],
        )
        .await?;
    Ok(super::returned_a_row(results.first()))
}

/// Deletes the conversation and its messages; false when the user has no such conversation.
pub async fn delete(db: &Db, conversation_id: &str, user_id: &str) -> Result<bool, AppError> {
    let args = [text(conversation_id), text(user_id)];
    let results = db
        .batch(
            "delete conversation",
            vec![
                db.stmt(UNCOUNT_CONVERSATION, &args)?,
                db.stmt(DELETE_MESSAGES, &args)?,
                db.stmt(DELETE_CONVERSATION, &args)?,
            ],
        )
        .await?;
    Ok(super::returned_a_row(results.get(2)))
}

/// Messages read in the same round trip as their conversation.
#[derive(Clone, Copy)]
pub enum Messages<'a> {
    None,
    /// The root-to-leaf path ending at this message, root first; empty when no such message.
    PathTo(&'a str),
    /// The root-to-leaf path ending at the conversation's newest message; empty when it has none.
    LatestPath,
    /// One page, oldest first (`fetch` rows: the caller asks for one more than it shows).
    Page {
        after: Option<&'a Cursor>,
        fetch: u32,
    },
}

/// Reads the user's conversation, then some of its messages, to run as one batch (one round
/// trip); [`conversation_with_messages`] decodes the results. Every message query is
/// owner-scoped on its own.
pub fn find_with_messages(
    db: &Db,
    conversation_id: &str,
    user_id: &str,
    messages: Messages<'_>,
    max_depth: u64,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let (c, u) = (text(conversation_id), text(user_id));
    let mut statements = vec![db.stmt(SELECT_CONVERSATION, &[c, u])?];
    statements.extend(match messages {
        Messages::None => None,
        Messages::PathTo(leaf) => Some(db.stmt(MESSAGE_PATH, &[text(leaf), c, u, num(max_depth)])?),
        Messages::LatestPath => Some(db.stmt(LATEST_PATH, &[c, u, num(max_depth)])?),
        Messages::Page { after: None, fetch } => Some(db.stmt(LIST_MESSAGES_FIRST, &[c, u, num(fetch.into())])?),
        Messages::Page { after: Some(a), fetch } => {
            Some(db.stmt(LIST_MESSAGES_AFTER, &[c, u, signed(a.key), text(&a.id), num(fetch.into())])?)
        }
    });
    Ok(statements)
}

/// What [`find_with_messages`] read: None when the conversation is not the user's.
pub fn conversation_with_messages(results: &[D1Result]) -> Result<Option<(Conversation, Vec<Message>)>, AppError> {
    let Some(conversation) = conversations(results.first())?.into_iter().next() else { return Ok(None) };
    Ok(Some((conversation, rows("messages", results.get(1))?)))
}
