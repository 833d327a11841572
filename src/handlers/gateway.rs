//! `GET /v1/models` and `POST /v1/chat/completions`: the OpenAI-compatible gateway. OpenAI
//! upstreams get the client's request as is and their bytes go back unchanged; other
//! providers are translated. Same routing, retries, fallbacks and timeouts as chat, plus an
//! exact-match KV cache for deterministic requests and a usage record per request.

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{bytes_response, header, read_body, AppError, HandlerResult, JSON};
use crate::quota::{self, Admission};
use crate::store::{usage, Db};
use crate::upstream::{self, wait, Connected, NoStream, Outlet, Wait};
use crate::{bindings, cache, platform};
use edgechat_core::body::is_json_content_type;
use edgechat_core::chat::{Accumulator, FinalStatus};
use edgechat_core::config::Config;
use edgechat_core::gateway::{
    self, cache_key, chunk_event, completion_json, finish_reason, models_json, passthrough_request, replay_pieces,
    usage_event, CachedCompletion, GatewayRequest, OpenAiError, ResponseMeta, DONE_EVENT,
};
use edgechat_core::llm::context::{estimate_tokens, MESSAGE_OVERHEAD_TOKENS};
use edgechat_core::llm::provider::{
    build_request, decode_completion, ChatRequest, Provider, StreamDecoder, UpstreamRequest,
};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::{StreamEvent, Usage};
use edgechat_core::{ids, request_id, ApiError};
use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::json;
use worker::{ByteStream, Env, Response};

const SSE_BUFFER: usize = 64;
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
    Ok(bytes_response(200, JSON, models_json(&models).into_bytes()))
}

/// Who a gateway request is billed to, for its usage record.
#[derive(Clone)]
struct Billing {
    env: Env,
    user_id: String,
    api_key_id: Option<String>,
    prompt_estimate: u64,
}

impl Billing {
    /// Writes the usage record (after the response, under `wait_until`).
    async fn record(
        self,
        model: String,
        provider: Option<&'static str>,
        status: &'static str,
        usage: Usage,
        estimated: bool,
        cache_hit: bool,
    ) {
        let Ok(d1) = bindings::d1(&self.env) else { return };
        let Ok(random) = platform::random_bytes() else { return };
        let id = ids::new_id("use", random);
        let record = usage::UsageRecord {
            usage_record_id: &id,
            user_id: &self.user_id,
            api_key_id: self.api_key_id.as_deref(),
            source: "gateway",
            model: &model,
            provider,
            status,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            is_usage_estimated: estimated,
            is_cache_hit: cache_hit,
            created_at: platform::now_ms(),
        };
        let _ = usage::record(&Db::new(d1), &record).await;
    }
}

pub async fn chat_completions(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    if !is_json_content_type(header(&cx.req, "content-type").as_deref()) {
        return Err(ApiError::unsupported_media_type().into());
    }
    let bytes = read_body(&mut cx.req, cx.config.max_body_bytes).await?;
    let req = gateway::parse_request(&bytes)?;
    let routes = &cx.config.routes;
    let route = routes.resolve(Some(&req.model)).map_err(|_| OpenAiError::model_not_found(&req.model))?;
    let chain: Vec<ModelRoute> = routes.chain(&route.name).into_iter().cloned().collect();
    if req.has_tools && route.provider != Provider::OpenAi {
        return Err(OpenAiError::invalid("tools", "tools are supported only by OpenAI-compatible models").into());
    }
    let now = platform::now_ms();
    let meta = ResponseMeta {
        id: format!("chatcmpl-{}", request_id::hex(&platform::random_bytes::<12>()?)),
        created: now / 1000,
        model: route.name.clone(),
    };
    let billing = Billing {
        env: cx.env.clone(),
        user_id: principal.user.user_id.clone(),
        api_key_id: principal.api_key_id.clone(),
        prompt_estimate: req
            .messages
            .iter()
            .map(|m| u64::from(estimate_tokens(&m.content) + MESSAGE_OVERHEAD_TOKENS))
            .sum(),
    };

    let estimate = billing.prompt_estimate + u64::from(req.max_tokens.unwrap_or(route.max_output_tokens));
    let admission = quota::admit(cx, &principal.user, &route.name, estimate, req.stream).await?;

    let bypass = header(&cx.req, "cache-control").is_some_and(|v| v.to_ascii_lowercase().contains("no-cache"));
    let key = req.deterministic.then(|| cache_key(&principal.user.user_id, &req));
    let cache_state = match (&key, bypass) {
        (Some(k), false) => {
            if let Some(hit) = cache::get(cx, k).await.and_then(|s| serde_json::from_str::<CachedCompletion>(&s).ok()) {
                let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
                cx.worker_ctx.wait_until(billing.clone().record(
                    chain[0].name.clone(),
                    Some(chain[0].provider.as_str()),
                    "cached",
                    usage,
                    false,
                    true,
                ));
                let resp = replay(&req, &meta, &hit)?;
                let _ = resp.headers().set("x-edgechat-cache", "hit");
                return Ok(resp);
            }
            "miss"
        }
        _ => "bypass",
    };

    let config = cx.config;
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
            temperature: req.temperature,
            stream: req.stream,
        };
        Ok(build_request(r.provider, api_key, &chat))
    };
    let connected = match upstream::connect(cx.env, config, &chain, build, None).await {
        Ok(c) => c,
        Err(failure) => {
            cx.worker_ctx.wait_until(billing.record(
                chain[0].name.clone(),
                None,
                "error",
                Usage::default(),
                false,
                false,
            ));
            return Err(connect_error(failure).into());
        }
    };
    let cache_to = if cache_state == "bypass" && !bypass { None } else { key };
    let resp = if req.stream {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(SSE_BUFFER);
        let relay = Relay { config: config.clone(), req, meta, billing, cache_to, outlet: Outlet::new(tx), admission };
        cx.worker_ctx.wait_until(relay.run(connected));
        let resp = Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>))
            .map_err(|e| AppError::platform("gateway stream", e))?;
        let h = resp.headers();
        let _ = h.set("content-type", "text/event-stream; charset=utf-8");
        let _ = h.set("cache-control", "no-cache, no-transform");
        resp
    } else {
        complete(cx, config, connected, &req, &meta, billing, cache_to, admission).await?
    };
    let _ = resp.headers().set("x-edgechat-cache", cache_state);
    Ok(resp)
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
fn replay(req: &GatewayRequest, meta: &ResponseMeta, hit: &CachedCompletion) -> HandlerResult {
    let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
    if !req.stream {
        let body = completion_json(meta, &hit.text, &hit.finish_reason, &usage);
        return Ok(bytes_response(200, JSON, body.into_bytes()));
    }
    let mut body = chunk_event(meta, json!({ "role": "assistant", "content": "" }), None, req.include_usage);
    for piece in replay_pieces(&hit.text) {
        body.push_str(&chunk_event(meta, json!({ "content": piece }), None, req.include_usage));
    }
    body.push_str(&chunk_event(meta, json!({}), Some(&hit.finish_reason), req.include_usage));
    if req.include_usage {
        body.push_str(&usage_event(meta, &usage));
    }
    body.push_str(DONE_EVENT);
    Ok(bytes_response(200, "text/event-stream; charset=utf-8", body.into_bytes()))
}

/// Reads a whole upstream body, giving up when it stalls.
async fn read_all(stream: &mut ByteStream, config: &Config) -> Result<Vec<u8>, OpenAiError> {
    let mut body = Vec::new();
    loop {
        match wait(stream.next(), None, config.heartbeat_ms, config.first_byte_timeout_ms).await {
            Wait::Ready(Some(Ok(bytes))) if body.len() + bytes.len() <= MAX_COMPLETION_BYTES => body.extend(bytes),
            Wait::Ready(None) => return Ok(body),
            Wait::TimedOut => {
                return Err(connect_error(NoStream::Failed {
                    timed_out: true,
                    status: None,
                    message: "the model stopped answering".into(),
                }))
            }
            _ => {
                return Err(connect_error(NoStream::Failed {
                    timed_out: false,
                    status: None,
                    message: "the model's answer broke off".into(),
                }))
            }
        }
    }
}

/// A non-streamed answer: OpenAI bytes as they came, other providers translated.
async fn complete(
    cx: &Ctx<'_>,
    config: &Config,
    connected: Connected,
    req: &GatewayRequest,
    meta: &ResponseMeta,
    billing: Billing,
    cache_to: Option<String>,
    admission: Admission,
) -> HandlerResult {
    let Connected { route, mut stream, controller } = connected;
    let body = match read_all(&mut stream, config).await {
        Ok(b) => b,
        Err(e) => {
            controller.abort();
            cx.worker_ctx.wait_until(admission.settle_owned(cx.env.clone(), 0));
            cx.worker_ctx.wait_until(billing.record(
                route.name.clone(),
                Some(route.provider.as_str()),
                "error",
                Usage::default(),
                false,
                false,
            ));
            return Err(e.into());
        }
    };
    let decoded = decode_completion(route.provider, &body)
        .map_err(|message| connect_error(NoStream::Failed { timed_out: false, status: None, message }))?;
    let (usage, estimated) = match decoded.usage {
        Some(u) => (u, false),
        None => (
            Usage { prompt_tokens: billing.prompt_estimate, completion_tokens: estimate_tokens(&decoded.text).into() },
            true,
        ),
    };
    let finish = finish_reason(decoded.finish_reason.as_deref().unwrap_or("stop"));
    if let (Some(key), false) = (cache_to, req.has_tools || finish == "tool_calls") {
        let entry = CachedCompletion {
            text: decoded.text.clone(),
            finish_reason: finish.into(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        };
        if let Ok(json) = serde_json::to_string(&entry) {
            cache::put_later_ttl(cx, key, json, cx.config.gateway_cache_ttl_seconds);
        }
    }
    cx.worker_ctx.wait_until(billing.record(
        route.name.clone(),
        Some(route.provider.as_str()),
        "complete",
        usage,
        estimated,
        false,
    ));
    let out = if route.provider == Provider::OpenAi {
        body
    } else {
        completion_json(&ResponseMeta { model: route.name.clone(), ..meta.clone() }, &decoded.text, finish, &usage)
            .into_bytes()
    };
    Ok(bytes_response(200, JSON, out))
}

/// A streamed answer relayed to the client while it arrives (under `wait_until`).
struct Relay {
    config: Config,
    req: GatewayRequest,
    meta: ResponseMeta,
    billing: Billing,
    cache_to: Option<String>,
    outlet: Outlet,
    admission: Admission,
}

impl Relay {
    async fn run(mut self, connected: Connected) {
        let Connected { route, mut stream, controller } = connected;
        let translate = route.provider != Provider::OpenAi;
        let meta = ResponseMeta { model: route.name.clone(), ..self.meta.clone() };
        let include_usage = self.req.include_usage;
        let mut decoder = StreamDecoder::new(route.provider);
        let mut acc = Accumulator::default();
        let mut finish: Option<String> = None;
        let mut gone = false;
        let mut error: Option<&'static str> = None;
        if translate {
            gone = !self
                .outlet
                .send(
                    chunk_event(&meta, json!({ "role": "assistant", "content": "" }), None, include_usage).into_bytes(),
                )
                .await;
        }
        let c = &self.config;
        while !gone {
            match wait(stream.next(), Some(&mut self.outlet), c.heartbeat_ms, c.first_byte_timeout_ms).await {
                Wait::Ready(Some(Ok(bytes))) => {
                    let events = decoder.feed(&bytes);
                    if !translate && !self.outlet.send(bytes).await {
                        gone = true;
                    }
                    for event in events {
                        if let StreamEvent::Finish(reason) = &event {
                            finish = Some(reason.clone());
                        }
                        let delta = acc.apply(event);
                        if let (true, Some(text)) = (translate && !gone, delta) {
                            gone = !self
                                .outlet
                                .send(chunk_event(&meta, json!({ "content": text }), None, include_usage).into_bytes())
                                .await;
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
        if error.is_none() && acc.status() == FinalStatus::Error {
            error = Some("upstream_error");
        }
        let (usage, estimated) = acc.final_usage(self.billing.prompt_estimate);
        let finish = finish_reason(finish.as_deref().unwrap_or("stop"));
        if !gone {
            let mut tail = String::new();
            match error {
                Some(code) => {
                    let err = json!({ "error": { "message": "the model's stream ended early", "type": "server_error", "param": null, "code": code } });
                    tail.push_str(&format!("data: {err}\n\n"));
                }
                None if translate => {
                    tail.push_str(&chunk_event(&meta, json!({}), Some(finish), include_usage));
                    if include_usage {
                        tail.push_str(&usage_event(&meta, &usage));
                    }
                    tail.push_str(DONE_EVENT);
                }
                None => {}
            }
            if !tail.is_empty() {
                self.outlet.send(tail.into_bytes()).await;
            }
        }
        let status = if gone {
            FinalStatus::Cancelled
        } else if error.is_some() {
            FinalStatus::Error
        } else {
            FinalStatus::Complete
        };
        if let (FinalStatus::Complete, Some(key), false) =
            (status, &self.cache_to, self.req.has_tools || finish == "tool_calls")
        {
            let entry = CachedCompletion {
                text: acc.text.clone(),
                finish_reason: finish.into(),
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            };
            if let (Ok(kv), Ok(json)) = (bindings::cache(&self.billing.env), serde_json::to_string(&entry)) {
                if let Ok(put) = kv.put(key, json) {
                    let _ = put.expiration_ttl(self.config.gateway_cache_ttl_seconds).execute().await;
                }
            }
        }
        drop(self.outlet);
        self.admission.settle(&self.billing.env, usage.prompt_tokens + usage.completion_tokens).await;
        self.billing
            .record(route.name.clone(), Some(route.provider.as_str()), status.as_str(), usage, estimated, false)
            .await;
    }
}
