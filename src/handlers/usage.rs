//! `GET /api/v1/usage`: the signed-in user's usage by day and model, with their plan and
//! its limits.

use crate::app::Ctx;
use crate::auth::authenticate_reading;
use crate::http::{json, HandlerResult};
use crate::runtime;
use crate::store::reads::Read;
use crate::store::{admin, quotas};
use edgechat_core::admin::{parse_days, Today, UserUsage};
use edgechat_core::cursor::query_param;
use edgechat_core::plans::day_window;

pub async fn get_usage(cx: &mut Ctx<'_>) -> HandlerResult {
    // A bad `days` is answered after authentication; a good one is read with the session check.
    let days = parse_days(query_param(&cx.query(), "days").as_deref());
    let now = runtime::now_ms();
    let (today, _) = day_window(now);
    let reads = match &days {
        Ok(days) => {
            vec![Read::Usage { since: now.saturating_sub(days * 86_400_000) }, Read::TokensUsed { day: &today }]
        }
        Err(_) => Vec::new(),
    };
    let (principal, results) = authenticate_reading(cx, &reads).await?;
    days?;
    let rows = admin::user_usage(results.first())?;
    let used = quotas::tokens_used(results.get(1))?;
    let plan = cx.config.plans.get(&principal.user.plan);
    let today = Today { day: &today, tokens_used: used, tokens_limit: plan.tokens_per_day };
    json(200, &UserUsage { plan, today, usage: &rows })
}
