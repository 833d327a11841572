//! Chat turns in D1: the user message and the assistant placeholder stored before the
//! upstream call, and the assistant message finalized when the stream ends.

use super::{num, opt_text, quotas::Reservation, rows, text, Db, SqlArg};
use crate::http::AppError;
use crate::store::{D1PreparedStatement, D1Result};
use edgechat_core::conversations::Message;

// A turn's messages go in the batch that counts the turn against the plan: each insert
// requires the call's reservation to be the last of the user's day (the day's row marked
// with the call's id) and, for a stream, its slot to be taken. A refused turn stores nothing.
// Inserted only while the conversation has room for `?9` more messages.
const INSERT_USER_MESSAGE: &str = "INSERT INTO messages \
     (message_id, conversation_id, user_id, parent_id, role, content, status, model, created_at) \
     SELECT ?1, ?2, ?3, ?4, 'user', ?5, 'complete', ?6, ?7 \
     WHERE (SELECT message_count FROM conversations WHERE conversation_id = ?2 AND user_id = ?3) + ?9 <= ?8 \
     AND EXISTS (SELECT 1 FROM daily_tokens WHERE user_id = ?3 AND day = ?11 AND last_reservation = ?10) \
     AND (?12 IS NULL OR EXISTS (SELECT 1 FROM active_streams WHERE stream_id = ?12))";
const INSERT_ASSISTANT_PLACEHOLDER: &str = "INSERT INTO messages \
     (message_id, conversation_id, user_id, parent_id, role, content, status, model, created_at) \
     SELECT ?1, ?2, ?3, ?4, 'assistant', '', 'streaming', ?5, ?6 \
     WHERE (SELECT message_count FROM conversations WHERE conversation_id = ?2 AND user_id = ?3) + ?8 <= ?7 \
     AND EXISTS (SELECT 1 FROM daily_tokens WHERE user_id = ?3 AND day = ?10 AND last_reservation = ?9) \
     AND (?11 IS NULL OR EXISTS (SELECT 1 FROM active_streams WHERE stream_id = ?11)) \
     RETURNING message_id";
const COUNT_TURN: &str = "UPDATE conversations SET message_count = message_count + ?4, updated_at = ?5 \
     WHERE conversation_id = ?1 AND user_id = ?2 AND EXISTS (SELECT 1 FROM messages WHERE message_id = ?3)";
const BUMP_CACHE_VERSION: &str = "UPDATE users SET cache_version = cache_version + 1 WHERE user_id = ?1";
const BUMP_CACHE_VERSION_IF_STORED: &str = "UPDATE users SET cache_version = cache_version + 1 \
     WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM messages WHERE message_id = ?2)";
const FINALIZE_ASSISTANT: &str = "UPDATE messages SET content = ?2, status = ?3, model = ?4, provider = ?5, \
     prompt_tokens = ?6, completion_tokens = ?7, is_usage_estimated = ?8, time_to_first_token_ms = ?9, duration_ms = ?10, \
     steps = ?11 WHERE message_id = ?1 \
     RETURNING message_id, conversation_id, parent_id, role, content, status, model, provider, \
     prompt_tokens, completion_tokens, is_usage_estimated, time_to_first_token_ms, duration_ms, created_at, steps";
const TOUCH_CONVERSATION: &str = "UPDATE conversations SET updated_at = ?2, \
     title = CASE WHEN title = '' AND ?3 IS NOT NULL THEN ?3 ELSE title END WHERE conversation_id = ?1";

/// A new message of a turn.
pub struct NewMessage<'a> {
    pub message_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub content: &'a str,
    pub model: &'a str,
    pub created_at: u64,
}

/// The statements that store a turn's user message (absent when regenerating) and the
/// assistant placeholder (`streaming`), under the per-conversation message cap and only if
/// the call's `reservation` was made in the same batch, before them. See [`turn_stored`].
pub fn turn_statements(
    db: &Db,
    conversation_id: &str,
    user_id: &str,
    user_message: Option<&NewMessage<'_>>,
    assistant: &NewMessage<'_>,
    max_messages: u64,
    reservation: &Reservation<'_>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let [marker, day, stream] = [text(reservation.marker), text(reservation.day), opt_text(reservation.stream_id)];
    let adding = 1 + u64::from(user_message.is_some());
    let mut statements = Vec::new();
    if let Some(u) = user_message {
        statements.push(db.stmt(
            INSERT_USER_MESSAGE,
            &[
                text(u.message_id),
                text(conversation_id),
                text(user_id),
                opt_text(u.parent_id),
                text(u.content),
                text(u.model),
                num(u.created_at),
                num(max_messages),
                num(adding),
                marker,
                day,
                stream,
            ],
        )?);
    }
    statements.push(db.stmt(
        INSERT_ASSISTANT_PLACEHOLDER,
        &[
            text(assistant.message_id),
            text(conversation_id),
            text(user_id),
            opt_text(assistant.parent_id),
            text(assistant.model),
            num(assistant.created_at),
            num(max_messages),
            num(adding),
            marker,
            day,
            stream,
        ],
    )?);
    // TURN_AFTER_PLACEHOLDER statements follow the placeholder.
    statements.push(db.stmt(
        COUNT_TURN,
        &[text(conversation_id), text(user_id), text(assistant.message_id), num(adding), num(assistant.created_at)],
    )?);
    statements.push(db.stmt(BUMP_CACHE_VERSION_IF_STORED, &[text(user_id), text(assistant.message_id)])?);
    Ok(statements)
}

/// How many of [`turn_statements`] come after the placeholder's insert (the count and the
/// cache version).
const TURN_AFTER_PLACEHOLDER: usize = 2;

/// True when [`turn_statements`] (whose `results` these are) stored the turn: its
/// placeholder, the last insert, returned its row.
pub fn turn_stored(results: &[D1Result]) -> bool {
    let placeholder_at = results.len().checked_sub(TURN_AFTER_PLACEHOLDER + 1);
    super::returned_a_row(placeholder_at.and_then(|at| results.get(at)))
}

/// The final state of an assistant message.
pub struct Final<'a> {
    pub message_id: &'a str,
    pub content: &'a str,
    pub status: &'a str,
    pub model: &'a str,
    pub provider: Option<&'a str>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub is_usage_estimated: bool,
    pub time_to_first_token_ms: Option<u64>,
    pub duration_ms: u64,
    /// The agent steps as stored (see `edgechat_core::agent::turn::stored_steps`).
    pub steps: Option<&'a str>,
}

/// Finalizes the assistant message, touches the conversation (setting `auto_title` when it
/// has none), bumps the owner's cache version and runs `also` (the usage record and the plan
/// settlement), in one transaction.
pub async fn finalize(
    db: &Db,
    conversation_id: &str,
    user_id: &str,
    f: &Final<'_>,
    auto_title: Option<&str>,
    now: u64,
    also: Vec<crate::store::D1PreparedStatement>,
) -> Result<Option<Message>, AppError> {
    let ttft = f.time_to_first_token_ms.map_or(SqlArg::Null, num);
    let mut statements = vec![
        db.stmt(
            FINALIZE_ASSISTANT,
            &[
                text(f.message_id),
                text(f.content),
                text(f.status),
                text(f.model),
                opt_text(f.provider),
                num(f.prompt_tokens),
                num(f.completion_tokens),
                num(u64::from(f.is_usage_estimated)),
                ttft,
                num(f.duration_ms),
                opt_text(f.steps),
            ],
        )?,
        db.stmt(TOUCH_CONVERSATION, &[text(conversation_id), num(now), opt_text(auto_title)])?,
        db.stmt(BUMP_CACHE_VERSION, &[text(user_id)])?,
    ];
    statements.extend(also);
    let results = db.batch("finalize turn", statements).await?;
    Ok(rows::<Message>("finalize turn", results.first())?.into_iter().next())
}

const FIND_MESSAGE: &str = "SELECT message_id, conversation_id, parent_id, role, content, status, model, provider, \
     prompt_tokens, completion_tokens, is_usage_estimated, time_to_first_token_ms, duration_ms, created_at, steps \
     FROM messages WHERE message_id = ?1 AND user_id = ?2";

/// One of the user's messages.
pub async fn find(db: &Db, user_id: &str, message_id: &str) -> Result<Option<Message>, AppError> {
    db.first("read message", db.stmt(FIND_MESSAGE, &[text(message_id), text(user_id)])?).await
}
