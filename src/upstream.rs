//! One attempt at an LLM upstream: the HTTP request (or Workers AI binding call) the core
//! built, sent with an abort handle, answered with a byte stream or a classified failure.

use crate::bindings;
use edgechat_core::config::Config;
use edgechat_core::llm::provider::{build_request, upstream_error_message, ChatRequest, Provider};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::ChatMessage;
use worker::{AbortController, ByteStream, Env, Fetch, Headers, Method, Request, RequestInit};

/// Longest upstream error body read for its message.
const MAX_ERROR_BODY: usize = 16 * 1024;

pub enum Attempt {
    /// The upstream accepted: its body as a stream, and the handle that aborts it.
    Streaming(ByteStream, AbortController),
    /// No stream: the HTTP status (None for a connection failure), `Retry-After`, and a
    /// message safe to show.
    Failed { status: Option<u16>, retry_after: Option<String>, message: String },
}

fn failed(status: Option<u16>, message: impl Into<String>) -> Attempt {
    Attempt::Failed { status, retry_after: None, message: message.into() }
}

/// Sends one streaming chat request for `route`.
pub async fn open(env: &Env, config: &Config, route: &ModelRoute, messages: &[ChatMessage]) -> Attempt {
    let (base, key) = config.provider_endpoint(route.provider);
    let req = ChatRequest {
        model: &route.upstream,
        messages,
        max_tokens: Some(route.max_output_tokens),
        temperature: None,
        stream: true,
    };
    let built = build_request(route.provider, key, &req);
    if route.provider == Provider::WorkersAi {
        return open_workers_ai(env, &built.path, &built.body).await;
    }
    let headers = Headers::new();
    for (name, value) in &built.headers {
        if headers.set(name, value).is_err() {
            return failed(None, "invalid upstream header");
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(built.body.into()));
    let request = match Request::new_with_init(&format!("{base}{}", built.path), &init) {
        Ok(r) => r,
        Err(_) => return failed(None, "invalid upstream URL"),
    };
    let controller = AbortController::default();
    let mut resp = match Fetch::Request(request).send_with_signal(&controller.signal()).await {
        Ok(r) => r,
        Err(_) => return failed(None, "could not connect to the upstream"),
    };
    let status = resp.status_code();
    if (200..300).contains(&status) {
        return match resp.stream() {
            Ok(stream) => Attempt::Streaming(stream, controller),
            Err(_) => failed(Some(status), "the upstream sent no body"),
        };
    }
    let retry_after = resp.headers().get("retry-after").ok().flatten();
    let body = resp.bytes().await.unwrap_or_default();
    let body = &body[..body.len().min(MAX_ERROR_BODY)];
    Attempt::Failed { status: Some(status), retry_after, message: upstream_error_message(route.provider, status, body) }
}

/// Workers AI through the `AI` binding (not available under local `wrangler dev`).
async fn open_workers_ai(env: &Env, model: &str, body: &str) -> Attempt {
    let Ok(ai) = env.ai(bindings::AI) else {
        return failed(Some(503), "the AI binding is not configured for the workers-ai provider");
    };
    let input: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return failed(None, "invalid Workers AI input"),
    };
    match ai.run_bytes(model, input).await {
        Ok(stream) => Attempt::Streaming(stream, AbortController::default()),
        Err(e) => failed(Some(502), format!("Workers AI failed: {}", truncate(&e.to_string(), 200))),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
