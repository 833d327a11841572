//! The OpenAI- and Anthropic-compatible gateway: `GET /v1/models`, `POST /v1/chat/completions`,
//! `POST /v1/responses`, `POST /v1/messages` and `POST /v1/embeddings`. An upstream that speaks
//! the client's API gets the client's request as is and its bytes go back unchanged; other
//! providers are translated (embeddings: OpenAI-compatible only; a Responses call is read as the
//! chat call that asks the same, and every answer to it is written in its format). Same routing,
//! retries, fallbacks and timeouts as chat, plus an exact-match KV cache for deterministic
//! requests and a usage record per request. The handlers and the order of a call are here; each
//! step lives in its own file.

mod billing;
mod cache;
pub mod embeddings;
mod items;
mod relay;
mod request;

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{AppError, HandlerResult, Reply, JSON};
use crate::quota;
use crate::runtime::streams;
use crate::upstream::{Outlet, Pacing};
use billing::Record;
use edgechat_core::answer::Dialect;
use edgechat_core::gateway::{models_json, OpenAiError};
use futures_channel::oneshot;

pub async fn list_models(cx: &mut Ctx<'_>) -> HandlerResult {
    authenticate(cx).await?;
    let routes = &cx.config.routes;
    let models: Vec<_> = routes.names().into_iter().filter_map(|name| routes.resolve(Some(name)).ok()).collect();
    Ok(Reply::bytes(200, JSON, models_json(&models, routes.default_model()).into_bytes()))
}

/// `GET /v1/models/{model}`: a routed model (the SDKs' `models.retrieve`); 404
/// `model_not_found` in OpenAI's shape for any other name.
pub async fn get_model(cx: &mut Ctx<'_>) -> HandlerResult {
    authenticate(cx).await?;
    let name = cx.param("model");
    let route =
        cx.config.routes.names().into_iter().find(|n| *n == name).and_then(|n| cx.config.routes.resolve(Some(n)).ok());
    let route = route.ok_or_else(|| OpenAiError::model_not_found(name))?;
    Ok(Reply::bytes(
        200,
        JSON,
        edgechat_core::gateway::model_json(route, cx.config.routes.default_model()).into_bytes(),
    ))
}

pub async fn chat_completions(cx: &mut Ctx<'_>) -> HandlerResult {
    answer(cx, Dialect::ChatCompletions).await
}

/// `POST /v1/responses`: OpenAI's Responses API, stateless, read as the equivalent chat call
/// (same routing, limits, usage and cache) and answered in the Responses format.
pub async fn responses(cx: &mut Ctx<'_>) -> HandlerResult {
    answer(cx, Dialect::Responses).await
}

/// `POST /v1/messages`: Anthropic's Messages API on the same routes, limits and records.
pub async fn messages(cx: &mut Ctx<'_>) -> HandlerResult {
    answer(cx, Dialect::Messages).await
}

/// `POST /v1/messages/count_tokens`: the prompt's estimate (`{"input_tokens": n}`), as the
/// gateway reserves it; free, and recorded nowhere.
pub async fn count_tokens(cx: &mut Ctx<'_>) -> HandlerResult {
    authenticate(cx).await?;
    let input_tokens = request::count(cx).await?;
    Ok(Reply::bytes(200, JSON, edgechat_core::messages::count_json(input_tokens).into_bytes()))
}

/// One call in `dialect`: admitted, run to its end, and its answer's head returned.
async fn answer(cx: &mut Ctx<'_>, dialect: Dialect) -> HandlerResult {
    let call = request::admit(cx, dialect).await?;
    let (head_tx, head_rx) = oneshot::channel::<Head>();
    let (readable, body) = call.req.stream.then(|| streams::body_pipe(&cx.req)).unzip();
    // The call runs to its end whatever the client does, so usage and limits are always settled.
    let pacing = Pacing::of(&cx.config);
    let lease = call.admission.lease(cx.env);
    cx.worker_ctx.wait_until(quota::renewing(lease, run(call, head_tx, body.map(|b| Outlet::new(b, pacing)))));
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

/// One admitted call, from the cache or the upstream to its usage record and the settlement
/// of its limits.
async fn run(call: request::Call, head: oneshot::Sender<Head>, outlet: Option<Outlet>) {
    let request::Call { config, dialect, req, original, chain, meta, billing, admission, cache_key, bypass } = call;
    let first = &chain[0];
    let cache = cache::label(cache_key.as_deref(), bypass);
    if let (Some(key), false) = (&cache_key, bypass) {
        if let Some(hit) = cache::get(&billing.env, key).await {
            let _ = head.send(cache::replay(dialect, &req, &meta, &hit));
            items::keep(&billing.env, &billing.user_id, cache::kept_items(dialect, &meta, &hit)).await;
            billing.close(admission, 0, Record::cached(first, &hit)).await;
            return;
        }
    }
    let connected = match relay::connect(&billing.env, &config, &chain, &req, original.as_ref()).await {
        Ok(c) => c,
        Err(e) => {
            let _ = head.send(Head::Error(e));
            billing.close(admission, 0, Record::failed(first)).await;
            return;
        }
    };
    let cache_to = cache_key.filter(|_| !req.has_tools);
    let route = connected.route.clone();
    let answer = relay::Answer {
        config: &config,
        dialect,
        req: &req,
        meta: &meta,
        billing: &billing,
        cache_to: cache_to.as_deref(),
    };
    let settled = answer.deliver(connected, head, cache, outlet).await;
    let charged = settled.charged(admission.reserved(), billing.prompt_estimate);
    billing.close(admission, charged.usage.total(), Record::ended(&route, charged)).await;
}
