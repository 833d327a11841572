//! The KV read-through cache: cached JSON bodies by key, written after the response.

use crate::app::Ctx;
use crate::bindings;

/// The cached body under `key`, if any (a KV failure counts as a miss).
pub async fn get(cx: &Ctx<'_>, key: &str) -> Option<String> {
    let kv = bindings::cache(cx.env).ok()?;
    kv.get(key).text().await.ok().flatten()
}

/// Stores `body` under `key` once the response is on its way.
pub fn put_later(cx: &Ctx<'_>, key: String, body: String) {
    let ttl = cx.config.cache_ttl_seconds;
    let env = cx.env.clone();
    cx.worker_ctx.wait_until(async move {
        if let Ok(kv) = bindings::cache(&env) {
            if let Ok(put) = kv.put(&key, body) {
                let _ = put.expiration_ttl(ttl).execute().await;
            }
        }
    });
}
