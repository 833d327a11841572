//! The output items of stored Responses answers (`store`, the default), kept in KV per user
//! for [`ITEM_TTL_SECONDS`] so that later requests may name them by `item_reference` (what
//! the Vercel AI SDK sends for earlier answers by default).

use crate::bindings;
use edgechat_core::responses::{item_key, StoredItems, ITEM_TTL_SECONDS};
use edgechat_core::serde_json::{self, Value};
use worker::Env;

/// Keeps an answer's output items (`(id, item JSON)`); a KV failure loses only the references.
pub(super) async fn keep(env: &Env, user_id: &str, items: Vec<(String, String)>) {
    let Ok(kv) = bindings::cache(env) else { return };
    for (id, item) in items {
        if let Ok(put) = kv.put(&item_key(user_id, &id), item) {
            let _ = put.expiration_ttl(ITEM_TTL_SECONDS).execute().await;
        }
    }
}

/// The items of `ids` that `user_id` has stored (the others are left out: the request then
/// says which one was not found).
pub(super) async fn read(env: &Env, user_id: &str, ids: &[String]) -> StoredItems {
    let mut found = StoredItems::new();
    let Ok(kv) = bindings::cache(env) else { return found };
    for id in ids {
        if found.contains_key(id) {
            continue;
        }
        let text = kv.get(&item_key(user_id, id)).text().await.ok().flatten();
        if let Some(item) = text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            found.insert(id.clone(), item);
        }
    }
    found
}
