//! The gateway's exact-match cache in KV: deterministic answers stored once complete and
//! replayed, as a completion or a stream of chunks, to the same user's identical request.

use super::Head;
use crate::bindings;
use crate::http::JSON;
use edgechat_core::config::Config;
use edgechat_core::gateway::{
    chunk_event, completion_json, delta, replay_pieces, usage_event, CachedCompletion, GatewayRequest, ResponseMeta,
    DONE_EVENT,
};
use edgechat_core::llm::Usage;
use worker::Env;

/// The `x-edgechat-cache` label of an answer that did not come from the cache.
pub(super) fn label(key: Option<&str>, bypass: bool) -> &'static str {
    match (key, bypass) {
        (Some(_), true) | (None, _) => "bypass",
        (Some(_), false) => "miss",
    }
}

pub(super) async fn get(env: &Env, key: &str) -> Option<CachedCompletion> {
    let kv = bindings::cache(env).ok()?;
    let text = kv.get(key).text().await.ok().flatten()?;
    CachedCompletion::decode(&text)
}

/// Stores a completed answer for replay (an answer that calls tools is never stored).
pub(super) async fn put(env: &Env, config: &Config, key: &str, text: &str, finish: &str, usage: Usage) {
    if finish == "tool_calls" {
        return;
    }
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

/// A cached answer, as a completion or replayed as a stream of chunks.
pub(super) fn replay(req: &GatewayRequest, meta: &ResponseMeta, hit: &CachedCompletion) -> Head {
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
