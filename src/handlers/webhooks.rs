//! `POST /api/v1/webhooks/stripe`: Stripe events, verified over the raw body and applied
//! exactly once. A failure to store answers 5xx so Stripe retries.

use crate::app::Ctx;
use crate::http::{json_text, read_body, HandlerResult};
use crate::runtime;
use crate::runtime::request::Header;
use crate::store::billing;
use edgechat_core::ids::AuditId;
use edgechat_core::plans;
use edgechat_core::stripe::{self, Action, Receipt};
use edgechat_core::ApiError;

pub async fn stripe(cx: &mut Ctx<'_>) -> HandlerResult {
    let secret = cx.config.stripe_webhook_secret()?.to_string();
    let body = read_body(cx).await?;
    let now = runtime::now_ms();
    stripe::verify_signature(cx.header(Header::StripeSignature), &body, &secret, now / 1000)
        .map_err(|e| ApiError::bad_request(e.code(), e.message()))?;
    let event = stripe::parse_event(&body).map_err(|m| ApiError::bad_request("invalid_event", m))?;
    let plan = match &event.action {
        Action::Subscription { status, price_id, plan_hint, .. } => {
            stripe::plan_for(status, price_id.as_deref(), plan_hint.as_deref(), &cx.config.stripe_price_plans)
                .filter(|p| cx.config.plans.contains(p))
        }
        _ => None,
    };
    let (unlink_id, link_id) = (AuditId::new(runtime::random_bytes()?), AuditId::new(runtime::random_bytes()?));
    let audit = billing::LinkAudit { unlink_id: &unlink_id, link_id: &link_id, default_plan: plans::FREE };
    let db = cx.db()?;
    let applied = billing::apply(&db, &event, plan.as_deref(), &audit, now).await?;
    Ok(json_text(200, Receipt::json(!applied)))
}
