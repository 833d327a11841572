//! The context of a chat turn at the edge: reads the user's memories relevant to the new
//! message, loads, makes and stores the summary of the branch's older part, and assembles the
//! messages sent to the model (`llm::context` decides what goes in). A memory or summary that
//! cannot be had is left out: the turn goes on without it.

use crate::app::Ctx;
use crate::runtime;
use crate::side_call::{self, cause, log_skipped, SideCall};
use crate::store::{memories, summaries};
use edgechat_core::accounts::User;
use edgechat_core::agent::turn;
use edgechat_core::conversations::{Conversation, Message};
use edgechat_core::llm::context::{
    assemble, outgrows, summary_prompt, summary_tokens, to_summarize, Branch, Sections, MEMORY_TOP_K,
};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::ChatMessage;
use edgechat_core::search::fts_any_query;
use edgechat_core::serde_json;

/// Longest summary answer read, in bytes.
const MAX_SUMMARY_ANSWER_BYTES: u64 = 1024 * 1024;

/// What the context of one turn is built from.
pub struct Request<'a> {
    pub user: &'a User,
    /// The API key the turn was requested with, for the summary call's usage record.
    pub api_key_id: Option<&'a str>,
    pub conversation: &'a Conversation,
    /// The turn's model: its window sets the budget, and it writes the summary.
    pub route: &'a ModelRoute,
    /// The stored branch, oldest first: up to the new message's parent, or up to the question
    /// being answered anew (then `question` is its last message).
    pub path: &'a [Message],
    /// The user message the turn answers.
    pub question: &'a Message,
    /// Whether the model is offered tools in this turn.
    pub tools_offered: bool,
}

/// The messages to send for the turn: the system message (system prompt, tool note, relevant
/// memories, the summary when the branch outgrows the window) and the newest messages that fit.
pub async fn build(cx: &mut Ctx<'_>, req: Request<'_>) -> Vec<ChatMessage> {
    let budget = req.route.context_tokens.saturating_sub(req.route.max_output_tokens);
    let memories = relevant_memories(cx, &req).await;
    let mut stored: Vec<&Message> = req.path.iter().collect();
    if stored.last().map(|m| &m.message_id) != Some(&req.question.message_id) {
        stored.push(req.question);
    }
    let branch: Vec<Vec<ChatMessage>> = stored.iter().map(|m| turn::as_chat(m)).collect();
    let mut sections = Sections {
        system_prompt: req.conversation.system_prompt.as_deref(),
        tools_offered: req.tools_offered,
        memories: &memories,
        summary: None,
    };
    if !outgrows(&sections, &branch, budget) {
        return assemble(&sections, &branch, budget, 0);
    }
    let (mut covered, mut summary) = stored_summary(cx, &req, &stored).await;
    if let Some(part) = to_summarize(&sections, &branch, budget, covered) {
        let through = &stored[part.end - 1].message_id;
        if let Some(text) = summarize(cx, &req, summary.as_deref(), &branch[part.clone()], budget).await {
            store_summary(cx, &req, through, &text).await;
            summary = Some(text);
            covered = part.end;
        }
    }
    sections.summary = summary.as_deref();
    assemble(&sections, &branch, budget, covered)
}

/// The user's memories sharing words with the new message, best first (none on failure).
async fn relevant_memories(cx: &mut Ctx<'_>, req: &Request<'_>) -> Vec<String> {
    let Some(fts) = fts_any_query(&req.question.content) else { return Vec::new() };
    let found = match cx.db() {
        Ok(db) => memories::relevant(&db, &req.user.user_id, &fts, MEMORY_TOP_K).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(found) => found.into_iter().map(|m| m.content).collect(),
        Err(e) => {
            log_skipped(cx, "context memories", &cause(&e));
            Vec::new()
        }
    }
}

/// The deepest stored summary on the branch: how many of its messages it covers, and its text.
async fn stored_summary(cx: &mut Ctx<'_>, req: &Request<'_>, stored: &[&Message]) -> (usize, Option<String>) {
    let ids: Vec<&str> = stored.iter().map(|m| m.message_id.as_str()).collect();
    let ids = serde_json::to_string(&ids).unwrap_or_default();
    let found = match cx.db() {
        Ok(db) => summaries::on_path(&db, &req.user.user_id, &ids).await,
        Err(e) => Err(e),
    };
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            log_skipped(cx, "context summary", &cause(&e));
            return (0, None);
        }
    };
    found
        .into_iter()
        .filter_map(|s| {
            stored.iter().position(|m| m.message_id.as_str() == s.message_id).map(|at| (at + 1, Some(s.content)))
        })
        .max_by_key(|(covered, _)| *covered)
        .unwrap_or((0, None))
}

async fn store_summary(cx: &mut Ctx<'_>, req: &Request<'_>, through: &str, text: &str) {
    let stored = match cx.db() {
        Ok(db) => summaries::insert(&db, through, &req.user.user_id, text, &req.route.name, runtime::now_ms()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        log_skipped(cx, "context summary", &cause(&e));
    }
}

/// Asks the turn's model for the summary of `part` (on top of `previous`), non-streamed,
/// admitted against the plan and recorded like any call. `None` when refused or failed.
async fn summarize(
    cx: &mut Ctx<'_>,
    req: &Request<'_>,
    previous: Option<&str>,
    part: &Branch,
    budget: u32,
) -> Option<String> {
    let route = req.route;
    let max_tokens = summary_tokens(budget).min(route.max_output_tokens);
    let prompt = summary_prompt(previous, part, max_tokens, route.context_tokens.saturating_sub(max_tokens));
    let call = SideCall {
        what: "context summary",
        user: req.user,
        api_key_id: req.api_key_id,
        route,
        prompt,
        max_tokens,
        max_answer_bytes: MAX_SUMMARY_ANSWER_BYTES,
    };
    let text = side_call::run(cx, call).await?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}
