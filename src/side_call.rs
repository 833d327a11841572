//! One short, non-streamed model call beside what the user asked for (a context summary, a
//! conversation's title): admitted against the plan, recorded in usage and settled like any
//! call; its answer's text, or `None` when it was refused or failed (logged, never an error:
//! the caller goes on without it).

use crate::app::Ctx;
use crate::http::{AppError, Failure};
use crate::runtime::streams::{read_whole, Whole};
use crate::store::usage;
use crate::upstream::{self, Connected, Pacing};
use crate::{quota, runtime};
use edgechat_core::accounts::User;
use edgechat_core::admission::Reserve;
use edgechat_core::chat::SettledStatus;
use edgechat_core::ids::UsageRecordId;
use edgechat_core::llm::context::estimate_messages;
use edgechat_core::llm::provider::{build_request, decode_completion, ChatRequest};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::{ChatMessage, ToolChoice, Usage};
use edgechat_core::log::failure_line;
use std::slice;

/// What to ask, of which model, on whose account.
pub struct SideCall<'a> {
    /// What the call is for, as its log lines name it ("context summary", "title").
    pub what: &'static str,
    pub user: &'a User,
    pub api_key_id: Option<&'a str>,
    pub route: &'a ModelRoute,
    pub prompt: Vec<ChatMessage>,
    pub max_tokens: u32,
    /// Largest answer read, in bytes.
    pub max_answer_bytes: u64,
}

/// How the call ended: its usage record's status, provider and usage, and the answer's text.
struct Ended {
    status: SettledStatus,
    provider: Option<&'static str>,
    usage: Usage,
    estimated: bool,
    text: Option<String>,
}

impl Ended {
    fn failed(status: SettledStatus, provider: Option<&'static str>, usage: Usage, estimated: bool) -> Self {
        Self { status, provider, usage, estimated, text: None }
    }
}

/// Makes the call: the answer's text, or `None` when refused or failed.
pub async fn run(cx: &mut Ctx<'_>, call: SideCall<'_>) -> Option<String> {
    let SideCall { what, user, api_key_id, route, prompt, max_tokens, max_answer_bytes } = call;
    let prompt_estimate = estimate_messages(&prompt);
    let reserve = Reserve { prompt_tokens: prompt_estimate, completion_tokens: u64::from(max_tokens) };
    let admitted = match quota::Call::new(&route.name, "chat", api_key_id, reserve, false) {
        Ok(counted) => quota::admit(cx, user, counted).await,
        Err(e) => Err(e),
    };
    let admission = match admitted {
        Ok(admission) => admission,
        Err(e) => {
            log_skipped(cx, what, &cause(&e));
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
    // What admission reserved: the charge for an answer of which nothing is known.
    let reserved = Usage { prompt_tokens: prompt_estimate, completion_tokens: u64::from(max_tokens) };
    let ended = match upstream::connect(cx.env, &config, slice::from_ref(route), &build, None).await {
        Err(_) => Ended::failed(SettledStatus::Error, None, Usage::default(), false),
        Ok(Connected { route: used, body, controller }) => {
            let provider = Some(used.provider.as_str());
            let stall_ms = Pacing::of(&config).stall_ms;
            let read = read_whole(&body, max_answer_bytes, max_answer_bytes, stall_ms).await;
            controller.abort();
            match read {
                Ok(Whole::Bytes(bytes)) => match decode_completion(used.provider, &bytes) {
                    Ok(answer) => {
                        let estimate = Usage {
                            prompt_tokens: prompt_estimate,
                            completion_tokens: answer.estimated_output_tokens(),
                        };
                        let (usage, estimated) = Usage::reported_or(answer.usage, estimate);
                        let text = Some(answer.text);
                        Ended { status: SettledStatus::Complete, provider, usage, estimated, text }
                    }
                    Err(_) => Ended::failed(SettledStatus::Undecodable, provider, reserved, true),
                },
                Ok(Whole::TooLarge) => Ended::failed(SettledStatus::TooLarge, provider, reserved, true),
                Ok(Whole::Stalled) | Err(_) => Ended::failed(SettledStatus::Error, provider, Usage::default(), false),
            }
        }
    };
    let usage_id = UsageRecordId::new(runtime::random_bytes().unwrap_or_default());
    let record = usage::UsageRecord {
        usage_record_id: &usage_id,
        user_id: &user.user_id,
        api_key_id,
        source: "chat",
        model: &route.name,
        provider: ended.provider,
        status: ended.status.as_str(),
        prompt_tokens: ended.usage.prompt_tokens,
        completion_tokens: ended.usage.completion_tokens,
        is_usage_estimated: ended.estimated,
        is_cache_hit: false,
        created_at: runtime::now_ms(),
    };
    let insert = cx.db().and_then(|db| usage::insert_statement(&db, &record));
    if ended.text.is_none() {
        log_skipped(cx, what, &format!("the {what} call ended as {}", ended.status.as_str()));
    }
    admission.settle_with(cx.env, ended.usage.total(), insert.ok()).await;
    ended.text
}

/// One log line for what was left out and why (never content).
pub fn log_skipped(cx: &Ctx<'_>, what: &str, cause: &str) {
    runtime::log(&failure_line(cx.request_id, what, cause));
}

/// A failure's cause for the log: a platform failure's context, else "refused".
pub fn cause(e: &AppError) -> String {
    match e.failure() {
        Failure::Platform { context, cause } => format!("{context}: {cause}"),
        _ => "refused".into(),
    }
}
