//! The KV read-through cache: cached JSON bodies by key, written after the response.

use crate::app::Ctx;
use crate::bindings;

/// The cached body under `key`, if any (a KV failure counts as a miss). It stays a JavaScript
/// string: it is sent as it is, without a copy into the wasm and back.
pub async fn get(cx: &Ctx<'_>, key: &str) -> Option<js_sys::JsString> {
    let kv = bindings::cache(cx.env).ok()?;
    kv.js_text(key).await.ok().flatten()
}

/// Stores `body` under `key` once the response is on its way.
pub fn put_later(cx: &Ctx<'_>, key: String, body: String) {
    let ttl = cx.config.cache_ttl_seconds;
    let env = cx.env.clone();
    cx.worker_ctx.wait_until(async move {
        if let Ok(kv) = bindings::cache(&env) {
            let _ = kv.put(&key, &body, ttl).await;
        }
    });
}
