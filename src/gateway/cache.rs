//! The gateway's exact-match cache in KV: deterministic answers stored once complete and
//! replayed, as a completion or a stream of chunks, to the same user's identical request.

use super::Head;
use crate::bindings;
use crate::http::JSON;
use edgechat_core::answer::{self, Dialect, Finish, Whole};
use edgechat_core::config::Config;
use edgechat_core::gateway::{CachedCompletion, GatewayRequest, ResponseMeta};
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
pub(super) async fn put(env: &Env, config: &Config, key: &str, text: &str, finish: Finish, usage: Usage) {
    if finish == Finish::ToolCalls {
        return;
    }
    let entry = CachedCompletion {
        text: text.to_string(),
        finish_reason: finish.openai().into(),
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

/// The output items a cached answer replayed in `dialect` keeps (see [`answer::kept_items`]).
pub(super) fn kept_items(dialect: Dialect, meta: &ResponseMeta, hit: &CachedCompletion) -> Vec<(String, String)> {
    let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
    let answer = Whole { text: &hit.text, tool_calls: &[], finish: Finish::of(&hit.finish_reason), usage };
    answer::kept_items(dialect, meta, &answer)
}

/// A cached answer in the client's dialect, whole or replayed as a stream.
pub(super) fn replay(dialect: Dialect, req: &GatewayRequest, meta: &ResponseMeta, hit: &CachedCompletion) -> Head {
    let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
    let answer = Whole { text: &hit.text, tool_calls: &[], finish: Finish::of(&hit.finish_reason), usage };
    if !req.stream {
        let body = answer::whole(dialect, meta, &answer);
        return Head::Body { content_type: JSON, bytes: body.into_bytes(), cache: "hit" };
    }
    let body = answer::replayed_stream(&mut *answer::stream_writer(dialect, meta, req.include_usage), &answer);
    Head::Body { content_type: "text/event-stream; charset=utf-8", bytes: body.into_bytes(), cache: "hit" }
}
