//! The chat turn at the edge: calls the upstream (retries, fallbacks, timeouts), relays its
//! answer as SSE events while it arrives, and finalizes the assistant message in D1 whatever
//! happens, running under `wait_until` so a departed client still gets its answer stored.

use crate::store::{messages, Db};
use crate::upstream::{self, Attempt};
use crate::{bindings, platform};
use edgechat_core::chat::{is_retryable, retry_delay_ms, Accumulator, FinalStatus};
use edgechat_core::config::Config;
use edgechat_core::conversations::Message;
use edgechat_core::llm::provider::StreamDecoder;
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::sse::{encode_comment, encode_event};
use edgechat_core::llm::ChatMessage;
use edgechat_core::log::failure_line;
use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::future::Future;
use std::time::Duration;
use worker::{console_log, AbortController, ByteStream, Delay, Env};

/// Everything a turn needs, owned, so it can outlive the request.
pub struct Turn {
    pub env: Env,
    pub config: Config,
    pub request_id: String,
    pub user_id: String,
    pub conversation_id: String,
    pub assistant_message_id: String,
    /// The requested model, then its fallbacks.
    pub chain: Vec<ModelRoute>,
    pub context: Vec<ChatMessage>,
    pub prompt_estimate: u64,
    pub auto_title: Option<String>,
    pub started_at: u64,
}

/// Where the turn's output goes: SSE bytes as they are produced, or one result at the end.
pub enum Sink {
    Sse { tx: mpsc::Sender<Vec<u8>>, first_event: String },
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

/// The SSE side of a turn: numbered events, heartbeats, and whether the client is still there.
struct SseOut {
    tx: mpsc::Sender<Vec<u8>>,
    next_id: u64,
}

impl SseOut {
    async fn event(&mut self, name: &str, data: &str) -> bool {
        self.next_id += 1;
        self.tx.send(encode_event(name, self.next_id, data).into_bytes()).await.is_ok()
    }

    async fn ping(&mut self) -> bool {
        self.tx.send(encode_comment("ping").into_bytes()).await.is_ok()
    }
}

enum Wait<T> {
    Ready(T),
    TimedOut,
    ClientGone,
}

/// Awaits `fut`, sending heartbeats every `heartbeat_ms` and giving up after `timeout_ms`.
async fn wait<F: Future + Unpin>(
    mut fut: F,
    out: &mut Option<SseOut>,
    heartbeat_ms: u64,
    timeout_ms: u64,
) -> Wait<F::Output> {
    let deadline = platform::now_ms() + timeout_ms;
    loop {
        let remaining = deadline.saturating_sub(platform::now_ms());
        if remaining == 0 {
            return Wait::TimedOut;
        }
        let tick = Delay::from(Duration::from_millis(remaining.min(heartbeat_ms)));
        match select(fut, tick).await {
            Either::Left((value, _)) => return Wait::Ready(value),
            Either::Right((_, pending)) => {
                fut = pending;
                if platform::now_ms() >= deadline {
                    return Wait::TimedOut;
                }
                if let Some(o) = out.as_mut() {
                    if !o.ping().await {
                        return Wait::ClientGone;
                    }
                }
            }
        }
    }
}

/// How connecting to the upstream ended, when it did not yield a stream.
enum NoStream {
    Failed(TurnError, String),
    ClientGone,
}

/// Tries each model of the chain, retrying retryable failures before the first byte.
async fn connect(turn: &Turn, out: &mut Option<SseOut>) -> Result<(ModelRoute, ByteStream, AbortController), NoStream> {
    let c = &turn.config;
    let mut last = NoStream::Failed(TurnError::Upstream, "no upstream model is configured".into());
    for route in &turn.chain {
        for attempt in 0..=c.retry.retries {
            let open = Box::pin(upstream::open(&turn.env, c, route, &turn.context));
            match wait(open, out, c.heartbeat_ms, c.first_byte_timeout_ms).await {
                Wait::Ready(Attempt::Streaming(stream, controller)) => return Ok((route.clone(), stream, controller)),
                Wait::Ready(Attempt::Failed { status, retry_after, message }) => {
                    last = NoStream::Failed(TurnError::Upstream, message);
                    if !status.is_none_or(is_retryable) || attempt == c.retry.retries {
                        break;
                    }
                    let delay = retry_delay_ms(attempt, retry_after.as_deref(), &c.retry);
                    let pause = Box::pin(Delay::from(Duration::from_millis(delay)));
                    if let Wait::ClientGone = wait(pause, out, c.heartbeat_ms, delay + c.heartbeat_ms).await {
                        return Err(NoStream::ClientGone);
                    }
                }
                Wait::TimedOut => {
                    last = NoStream::Failed(
                        TurnError::Timeout,
                        format!("the model sent nothing within {} ms", c.first_byte_timeout_ms),
                    );
                    break;
                }
                Wait::ClientGone => return Err(NoStream::ClientGone),
            }
        }
    }
    Err(last)
}

/// Runs a turn to its end and stores the result; never returns early without finalizing.
pub async fn run(turn: Turn, sink: Sink) {
    let (mut out, json_tx) = match sink {
        Sink::Sse { tx, first_event } => {
            let mut o = SseOut { tx, next_id: 0 };
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
        match connect(&turn, &mut out).await {
            Err(NoStream::ClientGone) => client_gone = true,
            Err(NoStream::Failed(kind, message)) => error = Some((kind, message)),
            Ok((route, mut stream, controller)) => {
                let mut decoder = StreamDecoder::new(route.provider);
                used = Some(route);
                'read: loop {
                    match wait(stream.next(), &mut out, c.heartbeat_ms, c.first_byte_timeout_ms).await {
                        Wait::Ready(Some(Ok(bytes))) => {
                            for event in decoder.feed(&bytes) {
                                let Some(text) = acc.apply(event) else { continue };
                                first_token_at.get_or_insert_with(platform::now_ms);
                                if let Some(o) = out.as_mut() {
                                    if !o.event("delta", &json!({ "text": text }).to_string()).await {
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
    let now = platform::now_ms();
    let (usage, estimated) = acc.final_usage(turn.prompt_estimate);
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
            messages::finalize(
                &Db::new(d1),
                &turn.conversation_id,
                &turn.user_id,
                &fin,
                turn.auto_title.as_deref(),
                now,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let message = match stored {
        Ok(m) => m,
        Err(e) => {
            if let crate::http::AppError::Platform { context, cause } = &e {
                console_log!("{}", failure_line(&turn.request_id, context, cause));
            }
            error.get_or_insert((TurnError::Storage, "the answer could not be stored".into()));
            None
        }
    };
    console_log!(
        "{}",
        json!({
            "level": "info", "msg": "turn", "request_id": turn.request_id, "user_id": turn.user_id,
            "status": status.as_str(), "model": fin.model, "provider": fin.provider,
            "time_to_first_token_ms": fin.time_to_first_token_ms, "duration_ms": fin.duration_ms,
            "completion_tokens": usage.completion_tokens, "malformed_chunks": acc.malformed,
            "error_code": error.as_ref().map(|(k, _)| k.code()),
        })
    );

    if let Some(o) = out.as_mut() {
        let _ = match (&error, &message) {
            (None, Some(m)) => o.event("done", &json!({ "assistant_message": m.view() }).to_string()).await,
            (Some((kind, text)), _) => {
                let body = json!({ "error": { "code": kind.code(), "message": text }, "assistant_message": message.as_ref().map(Message::view) });
                o.event("error", &body.to_string()).await
            }
            (None, None) => {
                o.event(
                    "error",
                    &json!({ "error": { "code": "internal_error", "message": "the answer could not be stored" } })
                        .to_string(),
                )
                .await
            }
        };
    }
    if let Some(tx) = json_tx {
        let _ = tx.send(TurnResult { message, error });
    }
}
