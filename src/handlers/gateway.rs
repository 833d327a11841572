//! `GET /v1/models` and `POST /v1/chat/completions`: the OpenAI-compatible gateway. OpenAI
//! upstreams get the client's request as is and their bytes go back unchanged; other
//! providers are translated. Same routing, retries, fallbacks and timeouts as chat, plus an
//! exact-match KV cache for deterministic requests and a usage record per request.

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{read_body, AppError, HandlerResult, Reply, JSON};
use crate::quota::{self, Admission};
use crate::relay::{Ending, Pump};
use crate::runtime::request::Header;
use crate::runtime::streams::{self, ByteStream, Whole};
use crate::store::{usage, Db};
use crate::upstream::{self, Connected, NoStream, Outlet, Paced, Wait};
use crate::{bindings, runtime};
use edgechat_core::body::is_json_content_type;
use edgechat_core::chat::{Accumulator, FinalStatus};
use edgechat_core::config::Config;
use edgechat_core::gateway::{
    self, cache_key, chunk_event, completion_json, delta, finish_reason, models_json, passthrough_request,
    replay_pieces, usage_event, CachedCompletion, GatewayRequest, OpenAiError, ResponseMeta, DONE_EVENT,
};
use edgechat_core::llm::context::{estimate_messages, estimate_tokens};
use edgechat_core::llm::provider::{
    build_request, decode_completion, ChatRequest, Provider, StreamDecoder, UpstreamRequest,
};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::{StreamEvent, Usage};
use edgechat_core::{ids, request_id, ApiError};
use futures_channel::oneshot;
use std::rc::Rc;
use worker::AbortController;
use worker::Env;

/// Largest non-streamed upstream answer read.
const MAX_COMPLETION_BYTES: usize = 4 * 1024 * 1024;

pub async fn list_models(cx: &mut Ctx<'_>) -> HandlerResult {
    authenticate(cx).await?;
    let routes = &cx.config.routes;
    let models: Vec<(&str, &str)> = routes
        .names()
        .into_iter()
        .map(|name| (name, routes.resolve(Some(name)).map_or("edgechat", |r| r.provider.as_str())))
        .collect();
    Ok(Reply::bytes(200, JSON, models_json(&models).into_bytes()))
}

/// Who a gateway request is billed to, for its usage record.
#[derive(Clone)]
struct Billing {
    env: Env,
    user_id: String,
    api_key_id: Option<String>,
    prompt_estimate: u64,
}

/// How a call ended, for its usage record.
struct Record {
    model: String,
    provider: Option<&'static str>,
    status: &'static str,
    usage: Usage,
    estimated: bool,
    cache_hit: bool,
}

impl Billing {
    /// Writes the usage record and settles the admission with `used_tokens`, in one D1 batch
    /// (after the response, under `wait_until`).
    async fn close(self, admission: Admission, used_tokens: u64, r: Record) {
        let record = match (bindings::d1(&self.env), runtime::random_bytes()) {
            (Ok(d1), Ok(random)) => {
                let id = ids::new_id("use", random);
                let record = usage::UsageRecord {
                    usage_record_id: &id,
                    user_id: &self.user_id,
                    api_key_id: self.api_key_id.as_deref(),
                    source: "gateway",
                    model: &r.model,
                    provider: r.provider,
                    status: r.status,
                    prompt_tokens: r.usage.prompt_tokens,
                    completion_tokens: r.usage.completion_tokens,
                    is_usage_estimated: r.estimated,
                    is_cache_hit: r.cache_hit,
                    created_at: runtime::now_ms(),
                };
                usage::insert_statement(&Db::new(d1), &record).ok()
            }
            _ => None,
        };
        admission.settle_with(&self.env, used_tokens, record).await;
    }
}

/// The request's body, read and checked: the call and the routes it may take.
async fn read_call(cx: &Ctx<'_>) -> Result<(GatewayRequest, Vec<ModelRoute>), AppError> {
    if !is_json_content_type(cx.header(Header::ContentType)) {
        return Err(ApiError::unsupported_media_type().into());
    }
    let bytes = read_body(cx).await?;
    let req = gateway::parse_request(&bytes)?;
    let routes = &cx.config.routes;
    let route = routes.resolve(Some(&req.model)).map_err(|_| OpenAiError::model_not_found(&req.model))?;
    if req.has_tools && route.provider != Provider::OpenAi {
        return Err(OpenAiError::invalid("tools", "tools are supported only by OpenAI-compatible models").into());
    }
    let chain = routes.chain(&route.name).into_iter().cloned().collect();
    Ok((req, chain))
}

pub async fn chat_completions(cx: &mut Ctx<'_>) -> HandlerResult {
    // The body comes first, so that the call's admission can share a D1 round trip with the
    // authentication; its errors are answered after authentication's.
    let (req, chain) = match read_call(cx).await {
        Ok(call) => call,
        Err(e) => {
            authenticate(cx).await?;
            return Err(e);
        }
    };
    let config = cx.config.clone();
    let route = &chain[0];
    let prompt_estimate = estimate_messages(&req.messages);
    let estimate = prompt_estimate + u64::from(req.max_tokens.unwrap_or(route.max_output_tokens));
    let call = quota::Call::new(&route.name, estimate, req.stream)?;
    let (principal, admission) = quota::authenticate_and_admit(cx, call).await?;
    let now = runtime::now_ms();
    let meta = ResponseMeta {
        id: format!("chatcmpl-{}", request_id::hex(&runtime::random_bytes::<12>()?)),
        created: now / 1000,
        model: route.name.clone(),
    };
    let billing = Billing {
        env: cx.env.clone(),
        user_id: principal.user.user_id.clone(),
        api_key_id: principal.api_key_id.clone(),
        prompt_estimate,
    };

    let bypass = cx.header(Header::CacheControl).is_some_and(|v| v.to_ascii_lowercase().contains("no-cache"));
    let cache_key = req.deterministic.then(|| cache_key(&principal.user.user_id, &req));
    let (head_tx, head_rx) = oneshot::channel::<Head>();
    let (readable, body) = req.stream.then(|| streams::body_pipe(&cx.req)).unzip();
    let call = Call { config, req, chain, meta, billing, admission, cache_key, bypass };
    // The call runs to its end whatever the client does, so usage and limits are always settled.
    let stall_ms = cx.config.first_byte_timeout_ms;
    cx.worker_ctx.wait_until(call.run(head_tx, body.map(|b| Outlet::new(b, stall_ms))));
    let head = head_rx.await.map_err(|_| AppError::platform("gateway call", "the call ended without an answer"))?;
    let (reply, cache) = match head {
        Head::Error(e) => return Err(e.into()),
        Head::Body { content_type, bytes, cache } => (Reply::bytes(200, content_type, bytes), cache),
        Head::Stream { cache } => match readable {
            Some(readable) => (Reply::event_stream(readable), cache),
            None => return Err(AppError::platform("gateway call", "a stream head for a request that is not streamed")),
        },
        Head::Piped { body, cache } => (Reply::event_stream(body), cache),
    };
    Ok(reply.with("x-edgechat-cache", cache))
}

/// How the response starts: an error, a whole body, a stream to follow on the channel, or
/// the upstream's own stream relayed as it is.
enum Head {
    Error(OpenAiError),
    Body { content_type: &'static str, bytes: Vec<u8>, cache: &'static str },
    Stream { cache: &'static str },
    Piped { body: web_sys::ReadableStream, cache: &'static str },
}

/// One gateway call after admission: cache, upstream, relay or completion, usage record and
/// limit settlement.
struct Call {
    config: Rc<Config>,
    req: GatewayRequest,
    chain: Vec<ModelRoute>,
    meta: ResponseMeta,
    billing: Billing,
    admission: Admission,
    cache_key: Option<String>,
    bypass: bool,
}

impl Call {
    async fn run(self, head: oneshot::Sender<Head>, outlet: Option<Outlet>) {
        let Call { config, req, chain, meta, billing, admission, cache_key, bypass } = self;
        let env = billing.env.clone();
        let first = &chain[0];
        let cache = match (&cache_key, bypass) {
            (Some(_), true) | (None, _) => "bypass",
            (Some(_), false) => "miss",
        };
        if let (Some(key), false) = (&cache_key, bypass) {
            if let Some(hit) = cache_get(&env, key).await {
                let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
                let _ = head.send(replay(&req, &meta, &hit));
                let provider = Some(first.provider.as_str());
                let record = Record {
                    model: first.name.clone(),
                    provider,
                    status: "cached",
                    usage,
                    estimated: false,
                    cache_hit: true,
                };
                billing.close(admission, 0, record).await;
                return;
            }
        }
        let build = |r: &ModelRoute| -> Result<UpstreamRequest, String> {
            let (_, api_key) = config.provider_endpoint(r.provider);
            if r.provider == Provider::OpenAi {
                return Ok(passthrough_request(&req, &r.upstream, api_key));
            }
            if req.has_tools {
                return Err(format!("model {} does not support tools", r.name));
            }
            let chat = ChatRequest {
                model: &r.upstream,
                messages: &req.messages,
                max_tokens: req.max_tokens.or(Some(r.max_output_tokens)),
                temperature: req.temperature.as_deref(),
                stream: req.stream,
            };
            Ok(build_request(r.provider, api_key, &chat))
        };
        let connected = match upstream::connect(&env, &config, &chain, build, None).await {
            Ok(c) => c,
            Err(failure) => {
                let _ = head.send(Head::Error(connect_error(failure)));
                let usage = Usage::default();
                let record = Record {
                    model: first.name.clone(),
                    provider: None,
                    status: "error",
                    usage,
                    estimated: false,
                    cache_hit: false,
                };
                billing.close(admission, 0, record).await;
                return;
            }
        };
        let cache_to = cache_key.filter(|_| !req.has_tools);
        let route = connected.route.clone();
        let outcome = match (outlet, connected) {
            // The upstream already speaks the client's format: its bytes go out untouched.
            (Some(outlet), Connected { route, body, controller }) if route.provider == Provider::OpenAi => {
                let signal = outlet.abort_signal();
                pass_through(&config, body, controller, head, cache, &billing, cache_to.as_deref(), signal).await
            }
            (Some(outlet), connected) => {
                if head.send(Head::Stream { cache }).is_err() {
                    connected.controller.abort();
                    Outcome::cancelled()
                } else {
                    relay(&config, connected, &req, &meta, outlet, &billing, cache_to.as_deref()).await
                }
            }
            (None, connected) => {
                let (result, outcome) = complete(&config, connected, &meta, &billing, cache_to.as_deref()).await;
                let _ = head.send(match result {
                    Ok(bytes) => Head::Body { content_type: JSON, bytes, cache },
                    Err(e) => Head::Error(e),
                });
                outcome
            }
        };
        let used = outcome.usage.prompt_tokens + outcome.usage.completion_tokens;
        let record = Record {
            model: route.name.clone(),
            provider: Some(route.provider.as_str()),
            status: outcome.status,
            usage: outcome.usage,
            estimated: outcome.estimated,
            cache_hit: false,
        };
        billing.close(admission, used, record).await;
    }
}

/// What a call cost and how it ended.
struct Outcome {
    status: &'static str,
    usage: Usage,
    estimated: bool,
}

impl Outcome {
    fn cancelled() -> Self {
        Self { status: "cancelled", usage: Usage::default(), estimated: false }
    }
}

async fn cache_get(env: &Env, key: &str) -> Option<CachedCompletion> {
    let kv = bindings::cache(env).ok()?;
    let text = kv.get(key).text().await.ok().flatten()?;
    CachedCompletion::decode(&text)
}

/// Stores a completed answer for replay.
async fn cache_put(env: &Env, config: &Config, key: &str, text: &str, finish: &str, usage: Usage) {
    let entry = CachedCompletion {
        text: text.to_string(),
        finish_reason: finish.into(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
    };
    if let Ok(kv) = bindings::cache(env) {
        let json = entry.encode();
        if let Ok(put) = kv.put(key, json) {
            let _ = put.expiration_ttl(config.gateway_cache_ttl_seconds).execute().await;
        }
    }
}

fn connect_error(failure: NoStream) -> OpenAiError {
    match failure {
        NoStream::Failed { timed_out: true, message, .. } => {
            OpenAiError { status: 504, message, kind: "server_error", param: None, code: Some("upstream_timeout") }
        }
        NoStream::Failed { status: Some(400 | 404 | 413 | 422), message, .. } => {
            OpenAiError { param: None, ..OpenAiError::invalid("", message) }
        }
        NoStream::Failed { status: Some(429), message, .. } => {
            OpenAiError { status: 429, message, kind: "requests", param: None, code: Some("rate_limit_exceeded") }
        }
        NoStream::Failed { message, .. } => {
            OpenAiError { status: 502, message, kind: "server_error", param: None, code: Some("upstream_error") }
        }
        NoStream::ClientGone => OpenAiError::from(&ApiError::internal()),
    }
}

/// A cached answer, as a completion or replayed as a stream of chunks.
fn replay(req: &GatewayRequest, meta: &ResponseMeta, hit: &CachedCompletion) -> Head {
    let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
    if !req.stream {
        let body = completion_json(meta, &hit.text, &hit.finish_reason, &usage);
        return Head::Body { content_type: JSON, bytes: body.into_bytes(), cache: "hit" };
    }
    let mut body = chunk_event(meta, &delta(Some("assistant"), Some("")), None, req.include_usage);
    for piece in replay_pieces(&hit.text) {
        body.push_str(&chunk_event(meta, &delta(None, Some(piece)), None, req.include_usage));
    }
    body.push_str(&chunk_event(meta, &delta(None, None), Some(&hit.finish_reason), req.include_usage));
    if req.include_usage {
        body.push_str(&usage_event(meta, &usage));
    }
    body.push_str(DONE_EVENT);
    Head::Body { content_type: "text/event-stream; charset=utf-8", bytes: body.into_bytes(), cache: "hit" }
}

/// Reads a whole upstream body, giving up when it stalls (read in JavaScript: one crossing
/// into wasm for the whole answer).
async fn read_all(body: &web_sys::ReadableStream, config: &Config) -> Result<Vec<u8>, OpenAiError> {
    let cap = MAX_COMPLETION_BYTES as u64;
    let (timed_out, message) = match streams::read_whole(body, cap, cap, config.first_byte_timeout_ms).await {
        Ok(Whole::Bytes(bytes)) => return Ok(bytes),
        Ok(Whole::Stalled) => (true, "the model stopped answering"),
        Ok(Whole::TooLarge) | Err(_) => (false, "the model's answer broke off"),
    };
    Err(connect_error(NoStream::Failed { timed_out, status: None, message: message.into() }))
}

/// A non-streamed answer: OpenAI bytes as they came, other providers translated.
async fn complete(
    config: &Config,
    connected: Connected,
    meta: &ResponseMeta,
    billing: &Billing,
    cache_to: Option<&str>,
) -> (Result<Vec<u8>, OpenAiError>, Outcome) {
    let Connected { route, body, controller } = connected;
    let failed = Outcome { status: "error", usage: Usage::default(), estimated: false };
    let body = match read_all(&body, config).await {
        Ok(b) => b,
        Err(e) => {
            controller.abort();
            return (Err(e), failed);
        }
    };
    let decoded = match decode_completion(route.provider, &body) {
        Ok(d) => d,
        Err(message) => {
            return (Err(connect_error(NoStream::Failed { timed_out: false, status: None, message })), failed)
        }
    };
    let (usage, estimated) = match decoded.usage {
        Some(u) => (u, false),
        None => (
            Usage { prompt_tokens: billing.prompt_estimate, completion_tokens: estimate_tokens(&decoded.text).into() },
            true,
        ),
    };
    let finish = finish_reason(decoded.finish_reason.as_deref().unwrap_or("stop"));
    if let (Some(key), false) = (cache_to, finish == "tool_calls") {
        cache_put(&billing.env, config, key, &decoded.text, finish, usage).await;
    }
    let out = if route.provider == Provider::OpenAi {
        body
    } else {
        completion_json(&ResponseMeta { model: route.name.clone(), ..meta.clone() }, &decoded.text, finish, &usage)
            .into_bytes()
    };
    (Ok(out), Outcome { status: "complete", usage, estimated })
}

/// A streamed answer from a provider with another format, translated chunk by chunk to
/// OpenAI chunks while it arrives.
async fn relay(
    config: &Config,
    connected: Connected,
    req: &GatewayRequest,
    meta: &ResponseMeta,
    mut outlet: Outlet,
    billing: &Billing,
    cache_to: Option<&str>,
) -> Outcome {
    let Connected { route, body, controller } = connected;
    let mut stream = ByteStream::from(body);
    let meta = ResponseMeta { model: route.name.clone(), ..meta.clone() };
    let include_usage = req.include_usage;
    let mut decoder = StreamDecoder::new(route.provider);
    let mut acc = Accumulator::default();
    let mut finish: Option<String> = None;
    let mut error: Option<&'static str> = None;
    let first = chunk_event(&meta, &delta(Some("assistant"), Some("")), None, include_usage);
    let mut gone = !outlet.send(first.into_bytes()).await;
    let mut paced = Paced::new(config.heartbeat_ms, config.first_byte_timeout_ms);
    while !gone {
        match paced.next(&mut stream, Some(&mut outlet)).await {
            Wait::Ready(Some(Ok(bytes))) => {
                for event in decoder.feed(&bytes) {
                    if let StreamEvent::Finish(reason) = &event {
                        finish = Some(reason.clone());
                    }
                    let delta = acc.apply(event);
                    if let (false, Some(text)) = (gone, delta) {
                        let chunk = chunk_event(&meta, &gateway::delta(None, Some(&text)), None, include_usage);
                        gone = !outlet.send(chunk.into_bytes()).await;
                    }
                }
            }
            Wait::Ready(None) => {
                for event in decoder.finish() {
                    acc.apply(event);
                }
                break;
            }
            Wait::Ready(Some(Err(_))) => {
                error = Some("upstream_error");
                break;
            }
            Wait::TimedOut => {
                error = Some("upstream_timeout");
                break;
            }
            Wait::ClientGone => gone = true,
        }
    }
    drop(stream);
    controller.abort();
    if error.is_none() && !gone && acc.status() == FinalStatus::Error {
        error = Some("upstream_error");
    }
    // A departed client also cancels the upstream fetch, which then looks like a broken
    // stream: ask the client before blaming the model.
    if error.is_some() && !gone && !outlet.ping().await {
        gone = true;
        error = None;
    }
    let finish = finish_reason(finish.as_deref().unwrap_or("stop"));
    if !gone {
        let (usage, _) = acc.final_usage(billing.prompt_estimate);
        let mut tail = String::new();
        match error {
            Some(code) => tail.push_str(&stream_error_event(code)),
            None => {
                tail.push_str(&chunk_event(&meta, &delta(None, None), Some(finish), include_usage));
                if include_usage {
                    tail.push_str(&usage_event(&meta, &usage));
                }
                tail.push_str(DONE_EVENT);
            }
        }
        outlet.send(tail.into_bytes()).await;
    }
    settle_stream(config, billing, cache_to, &acc, finish, gone, error.is_some()).await
}

/// The SSE event that ends a stream the model broke off.
fn stream_error_event(code: &'static str) -> String {
    let err = OpenAiError {
        status: 502,
        message: "the model's stream ended early".into(),
        kind: "server_error",
        param: None,
        code: Some(code),
    };
    format!("data: {}\n\n", err.body())
}

/// How a streamed call ended, and its answer cached when it completed.
async fn settle_stream(
    config: &Config,
    billing: &Billing,
    cache_to: Option<&str>,
    acc: &Accumulator,
    finish: &str,
    gone: bool,
    failed: bool,
) -> Outcome {
    let (usage, estimated) = acc.final_usage(billing.prompt_estimate);
    let status = if gone {
        FinalStatus::Cancelled
    } else if failed {
        FinalStatus::Error
    } else {
        FinalStatus::Complete
    };
    if let (FinalStatus::Complete, Some(key), false) = (status, cache_to, finish == "tool_calls") {
        cache_put(&billing.env, config, key, &acc.text, finish, usage).await;
    }
    Outcome { status: status.as_str(), usage, estimated }
}

/// A streamed answer from an OpenAI-compatible upstream: its bytes are piped to the client
/// by the runtime (no wasm work per chunk); Rust reads a copy once at the end for the usage
/// record and the cache. A model that breaks off or stalls cuts the client's stream off.
async fn pass_through(
    config: &Config,
    body: web_sys::ReadableStream,
    controller: AbortController,
    head: oneshot::Sender<Head>,
    cache: &'static str,
    billing: &Billing,
    cache_to: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Outcome {
    let tails = (stream_error_event("upstream_timeout"), stream_error_event("upstream_error"));
    let pump = Pump::start(
        &body,
        config.first_byte_timeout_ms,
        config.heartbeat_ms,
        MAX_COMPLETION_BYTES,
        (tails.0.as_bytes(), tails.1.as_bytes()),
        signal,
    );
    if head.send(Head::Piped { body: pump.client_body(), cache }).is_err() {
        controller.abort();
        return Outcome::cancelled();
    }
    let ending = pump.ended().await;
    if ending != Ending::End {
        controller.abort();
    }
    let (bytes, truncated) = pump.relayed();
    let mut decoder = StreamDecoder::new(Provider::OpenAi);
    let mut acc = Accumulator::default();
    let mut finish: Option<String> = None;
    let mut events = decoder.feed(&bytes);
    events.extend(decoder.finish());
    for event in events {
        if let StreamEvent::Finish(reason) = &event {
            finish = Some(reason.clone());
        }
        acc.apply(event);
    }
    // The client already has the upstream's bytes as they were, a cut-off included: what is
    // left is how the call counts.
    let failed = match ending {
        Ending::Stalled | Ending::Broken => true,
        Ending::End => !truncated && acc.status() == FinalStatus::Error,
        Ending::Gone => false,
    };
    let gone = ending == Ending::Gone;
    let finish = finish_reason(finish.as_deref().unwrap_or("stop"));
    let cache_to = cache_to.filter(|_| !truncated);
    settle_stream(config, billing, cache_to, &acc, finish, gone, failed).await
}
