//! `POST /api/v1/conversations/{conversation_id}/title`: one short model call that names the
//! conversation after its first answer, admitted, recorded in usage and billed like any call.
//! The first words of the first question (set when its answer was stored) stay the title when
//! the call fails; a title the user set is never replaced.

use crate::app::Ctx;
use crate::auth::check_credential;
use crate::handlers::conversations::{authenticate_for_conversation, not_found};
use crate::http::{json, HandlerResult};
use crate::runtime::streams::{read_whole, Whole};
use crate::store::conversations::{self as store, Messages};
use crate::store::usage;
use crate::upstream::{self, Connected, Pacing};
use crate::{quota, runtime};
use edgechat_core::admission::Reserve;
use edgechat_core::chat::{derive_title, SettledStatus};
use edgechat_core::ids::UsageRecordId;
use edgechat_core::llm::context::estimate_messages;
use edgechat_core::llm::provider::{build_request, decode_completion, ChatRequest};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::{ToolChoice, Usage};
use edgechat_core::log::failure_line;
use edgechat_core::titles::{clean_title, replaceable, title_prompt, TITLE_MAX_TOKENS};
use edgechat_core::ApiError;
use std::slice;

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
    let skipped = |cx: &Ctx<'_>, cause: &str| runtime::log(&failure_line(cx.request_id, "title", cause));
    let prompt = title_prompt(question, answer);
    let max_tokens = TITLE_MAX_TOKENS.min(route.max_output_tokens);
    let prompt_estimate = estimate_messages(&prompt);
    let reserve = Reserve { prompt_tokens: prompt_estimate, completion_tokens: u64::from(max_tokens) };
    let api_key_id = principal.api_key_id.as_deref();
    let Ok(call) = quota::Call::new(&route.name, "chat", api_key_id, reserve, false) else {
        skipped(cx, "refused");
        return None;
    };
    let admission = match quota::admit(cx, &principal.user, call).await {
        Ok(admission) => admission,
        Err(_) => {
            skipped(cx, "refused");
            return None;
        }
    };
    let config = cx.config.clone();
    let build = |r: &ModelRoute| {
        let (_, key) = config.provider_endpoint(r.provider);
        let request = ChatRequest {
            model: &r.upstream,
            messages: &prompt,
            max_tokens: Some(max_tokens),
            temperature: None,
            stream: false,
            tools: &[],
            tool_choice: ToolChoice::Auto,
        };
        Ok(build_request(r.provider, key, &request))
    };
    let reserved = Usage { prompt_tokens: prompt_estimate, completion_tokens: u64::from(max_tokens) };
    let failed = |status: SettledStatus, provider, usage, estimated| (status, provider, usage, estimated, None);
    let (status, provider, used, estimated, text): (SettledStatus, Option<&'static str>, Usage, bool, Option<String>) =
        match upstream::connect(cx.env, &config, slice::from_ref(route), &build, None).await {
            Err(_) => failed(SettledStatus::Error, None, Usage::default(), false),
            Ok(Connected { route: used, body, controller }) => {
                let provider = Some(used.provider.as_str());
                let stall_ms = Pacing::of(&config).stall_ms;
                let read = read_whole(&body, MAX_TITLE_ANSWER_BYTES, MAX_TITLE_ANSWER_BYTES, stall_ms).await;
                controller.abort();
                match read {
                    Ok(Whole::Bytes(bytes)) => match decode_completion(used.provider, &bytes) {
                        Ok(done) => {
                            let estimate = Usage {
                                prompt_tokens: prompt_estimate,
                                completion_tokens: done.estimated_output_tokens(),
                            };
                            let (usage, estimated) = Usage::reported_or(done.usage, estimate);
                            (SettledStatus::Complete, provider, usage, estimated, clean_title(&done.text))
                        }
                        Err(_) => failed(SettledStatus::Undecodable, provider, reserved, true),
                    },
                    Ok(Whole::TooLarge) => failed(SettledStatus::TooLarge, provider, reserved, true),
                    Ok(Whole::Stalled) | Err(_) => failed(SettledStatus::Error, provider, Usage::default(), false),
                }
            }
        };
    let usage_id = UsageRecordId::new(runtime::random_bytes().unwrap_or_default());
    let record = usage::UsageRecord {
        usage_record_id: &usage_id,
        user_id: &principal.user.user_id,
        api_key_id,
        source: "chat",
        model: &route.name,
        provider,
        status: status.as_str(),
        prompt_tokens: used.prompt_tokens,
        completion_tokens: used.completion_tokens,
        is_usage_estimated: estimated,
        is_cache_hit: false,
        created_at: runtime::now_ms(),
    };
    let insert = cx.db().and_then(|db| usage::insert_statement(&db, &record));
    if text.is_none() {
        skipped(cx, &format!("the title call ended as {}", status.as_str()));
    }
    admission.settle_with(cx.env, used.total(), insert.ok()).await;
    text
}
