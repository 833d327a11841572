//! `GET /health` (liveness) and `GET /health/ready` (D1, KV and configuration answer).

use crate::app::Ctx;
use crate::http::{json, HandlerResult};
use crate::{bindings, store};
use edgechat_core::views::{Health, Limits, Ready};
use edgechat_core::{ApiError, VERSION};

pub fn health(_cx: &Ctx<'_>) -> HandlerResult {
    json(200, &Health { status: "ok", version: VERSION })
}

/// `GET /api/v1/limits`: the configured size limits, so that a client can warn before the
/// server refuses (they are not secret: a refusal states them too).
pub fn limits(cx: &Ctx<'_>) -> HandlerResult {
    let l = cx.config.conversation_limits;
    json(
        200,
        &Limits {
            message_bytes: l.message_bytes,
            title_chars: l.title_chars,
            system_prompt_bytes: l.system_prompt_bytes,
            messages_per_conversation: l.messages_per_conversation,
        },
    )
}

/// 200 when a D1 query and a KV read both succeed and the configuration is valid; otherwise
/// 503 naming each failed check (never the underlying error text).
pub async fn ready(cx: &Ctx<'_>) -> HandlerResult {
    let (d1, kv) = futures_util::future::join(check_d1(cx), check_kv(cx)).await;
    let mut failed: Vec<String> = Vec::new();
    if !d1 {
        failed.push("d1 did not answer".into());
    }
    if !kv {
        failed.push("kv did not answer".into());
    }
    failed.extend(cx.config.all_problems().iter().map(|p| format!("config: {p}")));
    if failed.is_empty() {
        json(200, &Ready::OK)
    } else {
        Err(ApiError::unavailable(format!("not ready: {}", failed.join("; "))).into())
    }
}

async fn check_d1(cx: &Ctx<'_>) -> bool {
    let Ok(db) = bindings::d1(cx.env).map(store::Db::new) else {
        return false;
    };
    store::ping(&db).await
}

async fn check_kv(cx: &Ctx<'_>) -> bool {
    let Ok(kv) = bindings::cache(cx.env) else {
        return false;
    };
    kv.get("health:probe").text().await.is_ok()
}
