//! A gateway request and its admission: the caller authenticated, the body read and checked
//! against the routes and the caller's plan (output cap, choices, cost-changing fields, the
//! fallbacks the plan allows), and the call admitted by the plan's limits with its worst case
//! reserved.

use super::billing::Billing;
use super::items;
use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{read_body, AppError};
use crate::quota::{self, Admission};
use crate::runtime;
use crate::runtime::request::Header;
use edgechat_core::admission::{self, Admissible, Reserve};
use edgechat_core::answer::Dialect;
use edgechat_core::body::is_json_content_type;
use edgechat_core::config::Config;
use edgechat_core::gateway::{self, cache_key, GatewayRequest, OpenAiError, RawObject, ResponseMeta};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::messages;
use edgechat_core::responses::{self, Echo};
use edgechat_core::{request_id, ApiError};
use std::rc::Rc;
use std::sync::Arc;

/// One admitted gateway call: what it asks, the routes it may take, how its answer is
/// labelled, who pays, what it reserved, and its cache entry.
pub(super) struct Call {
    pub config: Rc<Config>,
    /// The API the client called.
    pub dialect: Dialect,
    pub req: GatewayRequest,
    /// The client's own body when it is not Chat Completions (a Messages request), for an
    /// upstream that speaks its API.
    pub original: Option<RawObject>,
    /// The model asked for, then the fallbacks the plan allows.
    pub chain: Vec<ModelRoute>,
    pub meta: ResponseMeta,
    pub billing: Billing,
    pub admission: Admission,
    pub cache_key: Option<String>,
    /// `Cache-Control: no-cache`: the cache is neither read nor labelled a miss.
    pub bypass: bool,
}

/// Authenticates the request, reads it (in `dialect`) and admits it by the caller's plan.
pub(super) async fn admit(cx: &mut Ctx<'_>, dialect: Dialect) -> Result<Call, AppError> {
    let principal = authenticate(cx).await?;
    let read = read_call(cx, dialect, &principal.user.user_id).await;
    // A Responses caller is told the member it sent, not the chat field it became.
    let (req, original, chain, echo) = match dialect {
        Dialect::Responses => read.map_err(|e| e.map_openai(responses::renamed))?,
        _ => read?,
    };
    let config = cx.config.clone();
    let plan = config.plans.get(&principal.user.plan);
    let admissible = admission::gateway(&req, chain, plan);
    let Admissible { chain, completion_tokens } = match dialect {
        Dialect::Responses => admissible.map_err(responses::renamed)?,
        _ => admissible?,
    };
    let route = &chain[0];
    let prompt_estimate = req.prompt_estimate();
    let reserve = Reserve { prompt_tokens: prompt_estimate, completion_tokens };
    let api_key_id = principal.api_key_id.as_deref();
    let counted = quota::Call::new(&route.name, "gateway", api_key_id, reserve, req.stream)?;
    let admission = quota::admit(cx, &principal.user, counted).await?;
    let meta = ResponseMeta {
        id: format!("{}{}", dialect.id_prefix(), request_id::hex(&runtime::random_bytes::<12>()?)),
        created: runtime::now_ms() / 1000,
        model: route.name.clone(),
        prompt_estimate,
        echo: echo.map(Arc::new),
    };
    let billing = Billing::of(cx, &principal, prompt_estimate);
    let bypass = cx.header(Header::CacheControl).is_some_and(|v| v.to_ascii_lowercase().contains("no-cache"));
    // The cache keeps one choice: a request for more is never answered from it.
    let cacheable = req.deterministic && req.n.unwrap_or(1) == 1;
    let cache_key = cacheable.then(|| cache_key(&principal.user.user_id, &req));
    Ok(Call { config: cx.config.clone(), dialect, req, original, chain, meta, billing, admission, cache_key, bypass })
}

/// The request's body, read and checked: the call, the client's own body when it was not
/// Chat Completions, the routes it may take, and what a Responses answer echoes of it.
async fn read_call(cx: &Ctx<'_>, dialect: Dialect, user_id: &str) -> Result<ReadCall, AppError> {
    let (req, original, echo) = read_request(cx, dialect, user_id, false).await?;
    let routes = &cx.config.routes;
    let route = routes.resolve(Some(&req.model)).map_err(|_| OpenAiError::model_not_found(&req.model))?;
    // Refused rather than dropped: a model without the capability is never sent them.
    if let Some(refused) = gateway::translation_refused(&req, route) {
        return Err(refused.into());
    }
    let chain = routes.chain(&route.name).into_iter().cloned().collect();
    Ok((req, original, chain, echo))
}

/// A call as read: the request, the client's own body (another dialect's), the routes it may
/// take, and a Responses answer's echo of its request.
type ReadCall = (GatewayRequest, Option<RawObject>, Vec<ModelRoute>, Option<Echo>);

/// The body read in `dialect` as a Chat Completions request (another dialect's converted to
/// it), with the client's own body when a native upstream may need it, and what a Responses
/// answer echoes; a Responses body's `item_reference`s read from `user_id`'s stored items.
/// `count_only`: a `count_tokens` body.
async fn read_request(
    cx: &Ctx<'_>,
    dialect: Dialect,
    user_id: &str,
    count_only: bool,
) -> Result<(GatewayRequest, Option<RawObject>, Option<Echo>), AppError> {
    let bytes = json_body(cx).await?;
    let (bytes, original, echo) = match dialect {
        Dialect::ChatCompletions => (bytes, None, None),
        Dialect::Messages => {
            let converted = messages::to_chat_completions(&bytes, count_only)?;
            (converted.chat, Some(converted.original), None)
        }
        // No upstream speaks it: the client's body is never sent on.
        Dialect::Responses => {
            // Most bodies name no stored item: those are not read twice.
            let referring = bytes.windows(14).any(|w| w == b"item_reference");
            let ids = if referring { responses::item_references(&bytes)? } else { Vec::new() };
            let stored = items::read(cx.env, user_id, &ids).await;
            let (chat, echo) = responses::to_chat(&bytes, &stored)?;
            (chat, None, Some(echo))
        }
    };
    Ok((gateway::parse_request(&bytes)?, original, echo))
}

/// A Messages prompt's estimated tokens (`count_tokens`), for a routed model.
pub(super) async fn count(cx: &Ctx<'_>) -> Result<u64, AppError> {
    let (req, _, _) = read_request(cx, Dialect::Messages, "", true).await?;
    cx.config.routes.resolve(Some(&req.model)).map_err(|_| OpenAiError::model_not_found(&req.model))?;
    Ok(req.prompt_estimate())
}

/// A gateway request's body, which must be declared JSON (else 415): read the same way by
/// every gateway `POST`.
pub(super) async fn json_body(cx: &Ctx<'_>) -> Result<Vec<u8>, AppError> {
    if !is_json_content_type(cx.header(Header::ContentType)) {
        return Err(ApiError::unsupported_media_type().into());
    }
    read_body(cx).await
}
