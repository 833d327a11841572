//! `GET /api/v1/usage`: the signed-in user's usage by day and model, with their plan and
//! its limits.

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{json, HandlerResult};
use crate::platform;
use crate::store::{admin, quotas};
use edgechat_core::admin::parse_days;
use edgechat_core::cursor::query_param;
use edgechat_core::plans::day_window;
use serde_json::json as j;

pub async fn get_usage(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let days = parse_days(query_param(&cx.query(), "days").as_deref())?;
    let now = platform::now_ms();
    let db = cx.db()?;
    let user = &principal.user;
    let rows = admin::user_usage(&db, &user.user_id, now.saturating_sub(days * 86_400_000)).await?;
    let (today, _) = day_window(now);
    let used = quotas::tokens_used(&db, &user.user_id, &today).await?;
    let plan = cx.config.plans.get(&user.plan);
    json(
        200,
        &j!({
            "plan": plan,
            "today": { "day": today, "tokens_used": used, "tokens_limit": plan.tokens_per_day },
            "usage": rows,
        }),
    )
}
