//! Usage and billing of a gateway call: how it ended and what it cost, written as its usage
//! record together with the settlement of what its admission reserved.

use crate::app::Ctx;
use crate::auth::Acting;
use crate::quota::Admission;
use crate::store::{usage, Db};
use crate::{bindings, runtime};
use edgechat_core::chat::{Accumulator, Settlement};
use edgechat_core::gateway::CachedCompletion;
use edgechat_core::ids;
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::Usage;
use worker::Env;

/// Who a gateway call is billed to, for its usage record.
#[derive(Clone)]
pub(super) struct Billing {
    pub env: Env,
    pub user_id: String,
    pub api_key_id: Option<String>,
    /// The prompt's tokens as estimated before the call, for an upstream that reports none.
    pub prompt_estimate: u64,
}

/// How a call ended, for its usage record.
pub(super) struct Record {
    model: String,
    provider: Option<&'static str>,
    status: &'static str,
    usage: Usage,
    estimated: bool,
    cache_hit: bool,
}

impl Record {
    /// Answered from the cache (billed to the first model, at no tokens against the limits).
    pub fn cached(first: &ModelRoute, hit: &CachedCompletion) -> Self {
        let usage = Usage { prompt_tokens: hit.prompt_tokens, completion_tokens: hit.completion_tokens };
        let provider = Some(first.provider.as_str());
        Self { model: first.name.clone(), provider, status: "cached", usage, estimated: false, cache_hit: true }
    }

    /// No upstream answered: nothing is charged.
    pub fn failed(first: &ModelRoute) -> Self {
        let usage = Usage::default();
        Self { model: first.name.clone(), provider: None, status: "error", usage, estimated: false, cache_hit: false }
    }

    /// `route` answered, and the call was charged as `charged` says (see
    /// `Settlement::charged`).
    pub fn ended(route: &ModelRoute, charged: Settlement) -> Self {
        Self {
            model: route.name.clone(),
            provider: Some(route.provider.as_str()),
            status: charged.status.as_str(),
            usage: charged.usage,
            estimated: charged.estimated,
            cache_hit: false,
        }
    }
}

impl Billing {
    /// The call of the request's `principal`, whose prompt was estimated at `prompt_estimate`.
    pub fn of(cx: &Ctx<'_>, principal: &Acting, prompt_estimate: u64) -> Self {
        Self {
            env: cx.env.clone(),
            user_id: principal.user.user_id.clone(),
            api_key_id: principal.api_key_id.clone(),
            prompt_estimate,
        }
    }

    /// A streamed call, as [`Accumulator::settle`] bills it: cancelled when the client left,
    /// cut or an error when the model failed, else complete.
    pub fn of_stream(&self, acc: &Accumulator, gone: bool, failed: bool) -> Settlement {
        acc.settle(self.prompt_estimate, gone, failed)
    }

    /// Writes the usage record and settles the admission with `used_tokens`, in one D1 batch
    /// (after the response, under `wait_until`).
    pub async fn close(self, admission: Admission, used_tokens: u64, r: Record) {
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
