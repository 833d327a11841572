//! The chat turn at the edge: calls the upstream (retries, fallbacks, timeouts), relays its
//! answer as SSE events while it arrives, and finalizes the assistant message in D1 whatever
//! happens, running under `wait_until` so a departed client still gets its answer stored.

use crate::quota::Admission;
use crate::runtime::streams::{BodyWriter, ByteStream};
use crate::store::{messages, usage, Db};
use crate::upstream::{self, Connected, NoStream, Outlet, Paced, Pacing, Wait};
use crate::{bindings, runtime};
use edgechat_core::chat::{Accumulator, Delta, EventError, FinalStatus, TurnDone, TurnFailed};
use edgechat_core::config::Config;
use edgechat_core::conversations::Message;
use edgechat_core::ids::{ConversationId, MessageId, UsageRecordId};
use edgechat_core::llm::provider::{build_request, ChatRequest, StreamDecoder};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::sse::encode_event;
use edgechat_core::llm::{ChatMessage, ToolChoice, Usage};
use edgechat_core::log::{failure_line, TurnLog};
use edgechat_core::serde::Serialize;
use edgechat_core::serde_json;
use futures_channel::oneshot;
use std::rc::Rc;
use worker::Env;

/// Everything a turn needs, owned, so it can outlive the request.
pub struct Turn {
    pub env: Env,
    pub config: Rc<Config>,
    pub request_id: String,
    pub user_id: String,
    /// The API key the turn was requested with, for its usage record.
    pub api_key_id: Option<String>,
    pub conversation_id: ConversationId,
    pub assistant_message_id: MessageId,
    /// The requested model, then its fallbacks.
    pub chain: Vec<ModelRoute>,
    pub context: Vec<ChatMessage>,
    pub prompt_estimate: u64,
    pub auto_title: Option<String>,
    pub started_at: u64,
    /// The plan-limit reservation, settled with the real usage at the end.
    pub admission: Admission,
}

/// Where the turn's output goes: SSE bytes as they are produced, or one result at the end.
pub enum Sink {
    Sse { body: BodyWriter, first_event: String },
    Json(oneshot::Sender<TurnResult>),
}

/// The stored assistant message and, when the turn failed, the error to report.
pub struct TurnResult {
    pub message: Option<Message>,
    pub error: Option<(TurnError, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnError {
    /// No byte from the upstream in time (504).
    Timeout,
    /// The upstream failed or broke off (502).
    Upstream,
    /// The stored result could not be written (500).
    Storage,
}

impl TurnError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "upstream_timeout",
            Self::Upstream => "upstream_error",
            Self::Storage => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Timeout => 504,
            Self::Upstream => 502,
            Self::Storage => 500,
        }
    }
}

/// The SSE side of a turn: numbered events over the outlet.
struct SseOut {
    outlet: Outlet,
    next_id: u64,
}

impl SseOut {
    async fn event(&mut self, name: &str, data: &str) -> bool {
        self.next_id += 1;
        self.outlet.send(encode_event(name, self.next_id, data).into_bytes()).await
    }

    /// An event whose data is `value` as JSON.
    async fn json_event(&mut self, name: &str, value: &impl Serialize) -> bool {
        // The views hold strings and integers only: serializing cannot fail.
        let data = serde_json::to_string(value).unwrap_or_default();
        self.event(name, &data).await
    }
}

/// Runs a turn to its end and stores the result; never returns early without finalizing.
pub async fn run(turn: Turn, sink: Sink) {
    let (mut out, json_tx) = match sink {
        Sink::Sse { body, first_event } => {
            let mut o = SseOut { outlet: Outlet::new(body, Pacing::of(&turn.config)), next_id: 0 };
            let alive = o.event("message", &first_event).await;
            (alive.then_some(o), None)
        }
        Sink::Json(tx) => (None, Some(tx)),
    };
    let sse = out.is_some();
    let c = &turn.config;
    let mut acc = Accumulator::default();
    let mut first_token_at = None;
    let mut client_gone = sse && out.is_none();
    let mut error: Option<(TurnError, String)> = None;
    let mut used: Option<ModelRoute> = None;

    if !client_gone {
        let build = |route: &ModelRoute| {
            let (_, key) = c.provider_endpoint(route.provider);
            let req = ChatRequest {
                model: &route.upstream,
                messages: &turn.context,
                max_tokens: Some(route.max_output_tokens),
                temperature: None,
                stream: true,
                tools: &[],
                tool_choice: ToolChoice::Auto,
            };
            Ok(build_request(route.provider, key, &req))
        };
        match upstream::connect(&turn.env, c, &turn.chain, build, out.as_mut().map(|o| &mut o.outlet)).await {
            Err(NoStream::ClientGone) => client_gone = true,
            Err(NoStream::Failed { timed_out, message, .. }) => {
                error = Some((if timed_out { TurnError::Timeout } else { TurnError::Upstream }, message))
            }
            Ok(Connected { route, body, controller }) => {
                let mut stream = ByteStream::from(body);
                let mut decoder = StreamDecoder::new(route.provider);
                let mut paced = Paced::new(Pacing::of(c));
                used = Some(route);
                'read: loop {
                    let outlet = out.as_mut().map(|o| &mut o.outlet);
                    match paced.next(&mut stream, outlet).await {
                        Wait::Ready(Some(Ok(bytes))) => {
                            for event in decoder.feed(&bytes) {
                                let Some(text) = acc.apply(event) else { continue };
                                first_token_at.get_or_insert_with(runtime::now_ms);
                                if let Some(o) = out.as_mut() {
                                    if !o.json_event("delta", &Delta { text: &text }).await {
                                        client_gone = true;
                                        break 'read;
                                    }
                                }
                            }
                        }
                        Wait::Ready(Some(Err(_))) => {
                            error = Some((TurnError::Upstream, "the model's stream broke off".into()));
                            break;
                        }
                        Wait::Ready(None) => {
                            for event in decoder.finish() {
                                acc.apply(event);
                            }
                            break;
                        }
                        Wait::TimedOut => {
                            error = Some((
                                TurnError::Timeout,
                                format!("the model sent nothing for {} ms", c.first_byte_timeout_ms),
                            ));
                            break;
                        }
                        Wait::ClientGone => {
                            client_gone = true;
                            break;
                        }
                    }
                }
                // Stop paying for tokens nobody will read.
                drop(stream);
                controller.abort();
                if error.is_none() && !client_gone && acc.status() == FinalStatus::Error {
                    let message = acc.upstream_error.clone().unwrap_or_else(|| "the model's stream ended early".into());
                    error = Some((TurnError::Upstream, message));
                }
                // A departed client also cancels the upstream fetch, which then looks like a
                // broken stream: ask the client before blaming the model.
                if error.is_some() && !client_gone {
                    if let Some(o) = out.as_mut() {
                        if !o.outlet.ping().await {
                            client_gone = true;
                            error = None;
                        }
                    }
                }
            }
        }
    }

    let status = if client_gone {
        FinalStatus::Cancelled
    } else if error.is_some() {
        FinalStatus::Error
    } else {
        FinalStatus::Complete
    };
    let now = runtime::now_ms();
    // A model that answered is billed for what arrived, at least the prompt when the client
    // left or the stream was cut; no model answering costs nothing.
    let settled = used.as_ref().map(|_| acc.settle(turn.prompt_estimate, client_gone, error.is_some()));
    let (usage, estimated) = settled.map_or((Usage::default(), false), |s| (s.usage, s.estimated));
    let usage_status = settled.map_or(status.as_str(), |s| s.status.as_str());
    let route = used.as_ref().or(turn.chain.first());
    let fin = messages::Final {
        message_id: &turn.assistant_message_id,
        content: &acc.text,
        status: status.as_str(),
        model: route.map_or("", |r| r.name.as_str()),
        provider: used.as_ref().map(|r| r.provider.as_str()),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        is_usage_estimated: estimated,
        time_to_first_token_ms: first_token_at.map(|t| t.saturating_sub(turn.started_at)),
        duration_ms: now.saturating_sub(turn.started_at),
    };
    let stored = match bindings::d1(&turn.env) {
        Ok(d1) => {
            let db = Db::new(d1);
            let usage_id = UsageRecordId::new(runtime::random_bytes().unwrap_or_default());
            let record = usage::UsageRecord {
                usage_record_id: &usage_id,
                user_id: &turn.user_id,
                api_key_id: turn.api_key_id.as_deref(),
                source: "chat",
                model: fin.model,
                provider: fin.provider,
                status: usage_status,
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                is_usage_estimated: estimated,
                is_cache_hit: false,
                created_at: now,
            };
            // The usage record and the plan settlement go in the same batch as the answer.
            let used = usage.prompt_tokens + usage.completion_tokens;
            let also = usage::insert_statement(&db, &record).and_then(|insert| {
                let mut also = vec![insert];
                also.extend(turn.admission.settle_statements(&db, used)?);
                Ok(also)
            });
            match also {
                Ok(also) => {
                    let title = turn.auto_title.as_deref();
                    messages::finalize(&db, &turn.conversation_id, &turn.user_id, &fin, title, now, also).await
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let settled = stored.is_ok();
    let message = match stored {
        Ok(m) => m,
        Err(e) => {
            if let crate::http::Failure::Platform { context, cause } = e.failure() {
                runtime::log(&failure_line(&turn.request_id, context, cause));
            }
            error.get_or_insert((TurnError::Storage, "the answer could not be stored".into()));
            None
        }
    };
    let turn_log = TurnLog {
        level: "info",
        msg: "turn",
        request_id: &turn.request_id,
        user_id: &turn.user_id,
        status: status.as_str(),
        model: fin.model,
        provider: fin.provider,
        time_to_first_token_ms: fin.time_to_first_token_ms,
        duration_ms: fin.duration_ms,
        completion_tokens: usage.completion_tokens,
        malformed_chunks: acc.malformed,
        error_code: error.as_ref().map(|(k, _)| k.code()),
    };
    runtime::log(&turn_log.to_line());

    if let Some(o) = out.as_mut() {
        let _ = match (&error, &message) {
            (None, Some(m)) => o.json_event("done", &TurnDone { assistant_message: m.view() }).await,
            (Some((kind, text)), _) => {
                let error = EventError { code: kind.code(), message: text };
                let assistant_message = Some(message.as_ref().map(Message::view));
                o.json_event("error", &TurnFailed { error, assistant_message }).await
            }
            (None, None) => {
                let error = EventError { code: "internal_error", message: "the answer could not be stored" };
                o.json_event("error", &TurnFailed { error, assistant_message: None }).await
            }
        };
    }
    if !settled {
        turn.admission.settle(&turn.env, usage.prompt_tokens + usage.completion_tokens).await;
    }
    if let Some(tx) = json_tx {
        let _ = tx.send(TurnResult { message, error });
    }
}
