//! `POST /v1/embeddings`: authenticated and admitted like a chat completion (the input's
//! estimate reserved, no output), sent to the first OpenAI-compatible route that answers
//! (the retries, fallbacks and timeouts of `upstream::connect`), its answer passed back as
//! the upstream sent it, and the prompt tokens it reports written as the call's usage record.

use super::billing::{Billing, Record};
use super::relay::{connect_error, read_all};
use super::request::json_body;
use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{AppError, HandlerResult, Reply, JSON};
use crate::quota::{self, Admission};
use crate::upstream::{self, Connected, NoStream};
use edgechat_core::admission::Reserve;
use edgechat_core::chat::{SettledStatus, Settlement};
use edgechat_core::config::Config;
use edgechat_core::embeddings::{self, EmbeddingsRequest};
use edgechat_core::gateway::OpenAiError;
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::Usage;
use futures_channel::oneshot;
use std::rc::Rc;

/// Largest embeddings answer read: a batch of long vectors is megabytes of JSON text.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

type Answer = Result<Vec<u8>, OpenAiError>;

pub async fn create(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let bytes = json_body(cx).await?;
    let req = embeddings::parse_request(&bytes)?;
    let config = cx.config.clone();
    let routes = &config.routes;
    let route = routes.resolve(Some(&req.model)).map_err(|_| OpenAiError::model_not_found(&req.model))?;
    let chain = routes.chain(&route.name).into_iter().cloned().collect();
    let chain = embeddings::routes(chain, config.plans.get(&principal.user.plan))?;
    // An embedding has no output: the input is all a call can cost.
    let reserve = Reserve { prompt_tokens: req.prompt_estimate, completion_tokens: 0 };
    let counted = quota::Call::new(&chain[0].name, "gateway", principal.api_key_id.as_deref(), reserve, false)?;
    let admission = quota::admit(cx, &principal.user, counted).await?;
    let billing = Billing::of(cx, &principal, req.prompt_estimate);
    let (answer_tx, answer_rx) = oneshot::channel::<Answer>();
    // The call runs to its end whatever the client does, so usage and limits are always settled.
    let lease = admission.lease(cx.env);
    cx.worker_ctx.wait_until(quota::renewing(lease, run(config, req, chain, billing, admission, answer_tx)));
    let answer =
        answer_rx.await.map_err(|_| AppError::platform("embeddings call", "the call ended without an answer"))?;
    Ok(Reply::bytes(200, JSON, answer?))
}

/// One admitted call, from the upstream to its usage record and the settlement of its limits.
async fn run(
    config: Rc<Config>,
    req: EmbeddingsRequest,
    chain: Vec<ModelRoute>,
    billing: Billing,
    admission: Admission,
    answer: oneshot::Sender<Answer>,
) {
    let build = |r: &ModelRoute| {
        let (_, api_key) = config.provider_endpoint(r.provider);
        Ok(embeddings::upstream_request(&req, &r.upstream, api_key))
    };
    let Connected { route, body, controller } =
        match upstream::connect(&billing.env, &config, &chain, &build, None).await {
            Ok(c) => c,
            Err(e) => {
                let _ = answer.send(Err(connect_error(e)));
                billing.close(admission, 0, Record::failed(&chain[0])).await;
                return;
            }
        };
    let settled = match read_all(&body, &config, MAX_ANSWER_BYTES).await {
        Ok(bytes) => match embeddings::reported_prompt_tokens(&bytes) {
            Ok(reported) => {
                let _ = answer.send(Ok(bytes));
                let prompt_tokens = reported.unwrap_or(billing.prompt_estimate);
                Settlement::complete(Usage { prompt_tokens, completion_tokens: 0 }, reported.is_none())
            }
            Err(message) => {
                let _ = answer.send(Err(connect_error(NoStream::Failed { timed_out: false, status: None, message })));
                Settlement::nothing(SettledStatus::Undecodable)
            }
        },
        Err((e, too_large)) => {
            controller.abort();
            let _ = answer.send(Err(e));
            Settlement::nothing(if too_large { SettledStatus::TooLarge } else { SettledStatus::Error })
        }
    };
    let charged = settled.charged(admission.reserved(), billing.prompt_estimate);
    billing.close(admission, charged.usage.total(), Record::ended(&route, charged)).await;
}
