//! `POST /api/v1/conversations/{conversation_id}/title`: one short model call that names the
//! conversation after its first answer, admitted, recorded in usage and billed like any call.
//! The first words of the first question (set when its answer was stored) stay the title when
//! the call fails; a title the user set is never replaced.

use crate::app::Ctx;
use crate::auth::check_credential;
use crate::handlers::conversations::{authenticate_for_conversation, not_found};
use crate::http::{json, HandlerResult};
use crate::side_call::{self, SideCall};
use crate::store::conversations::{self as store, Messages};
use edgechat_core::chat::derive_title;
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::titles::{clean_title, replaceable, title_prompt, TITLE_MAX_TOKENS};
use edgechat_core::ApiError;

/// Longest title answer read, in bytes.
const MAX_TITLE_ANSWER_BYTES: u64 = 64 * 1024;

pub async fn generate_title(cx: &mut Ctx<'_>) -> HandlerResult {
    let checked = check_credential(cx).await?;
    // The two oldest messages: the first question and its answer.
    let read = Messages::Page { after: None, fetch: 2 };
    let (principal, found) = authenticate_for_conversation(cx, checked, read).await?;
    let (mut conversation, first) = found.ok_or_else(not_found)?;
    let question = first.iter().find(|m| m.role == "user" && m.parent_id.is_none());
    let answer = question
        .and_then(|q| first.iter().find(|m| m.role == "assistant" && m.parent_id.as_deref() == Some(&q.message_id)));
    // Nothing to name it by yet (no complete first answer), or a title the user set: as it is.
    let (Some(question), Some(answer)) = (question, answer.filter(|a| a.status == "complete")) else {
        return json(200, &conversation.view());
    };
    if !replaceable(&conversation.title, &question.content) {
        return json(200, &conversation.view());
    }
    let route = cx.config.routes.resolve_chat(Some(&conversation.model)).map_err(ApiError::validation)?.clone();
    let user_id = principal.user.user_id.clone();
    let generated = call_model(cx, &principal, &route, &question.content, &answer.content).await;
    let title = generated.unwrap_or_else(|| derive_title(&question.content));
    let limit = cx.config.conversation_limits.title_chars;
    let title: String = title.chars().take(limit).collect();
    let db = cx.db()?;
    if store::replace_title(&db, &conversation.conversation_id, &user_id, &conversation.title, &title).await? {
        conversation.title = title;
    } else if let Some(now) = store::find(&db, &conversation.conversation_id, &user_id).await? {
        // Renamed meanwhile: the user's title stays.
        conversation = now;
    }
    json(200, &conversation.view())
}

/// The title the conversation's model gives, non-streamed; `None` when refused or failed.
async fn call_model(
    cx: &mut Ctx<'_>,
    principal: &crate::auth::Principal,
    route: &ModelRoute,
    question: &str,
    answer: &str,
) -> Option<String> {
    let call = SideCall {
        what: "title",
        user: &principal.user,
        api_key_id: principal.api_key_id.as_deref(),
        route,
        prompt: title_prompt(question, answer),
        max_tokens: TITLE_MAX_TOKENS.min(route.max_output_tokens),
        max_answer_bytes: MAX_TITLE_ANSWER_BYTES,
    };
    clean_title(&side_call::run(cx, call).await?)
}
