//! `/api/v1/admin/*`: user search and changes (audited), usage by user, model or day, and
//! the webhook and audit logs. Admins only; everyone else gets 403.

use crate::app::Ctx;
use crate::auth::{authenticate, Principal};
use crate::http::{json_text, list_page, read_json, AppError, HandlerResult};
use crate::runtime;
use crate::store::admin::{self as store, UserChange};
use edgechat_core::admin::{like_prefix, parse_days, UpdateUser, UsageGroup};
use edgechat_core::cursor::{page, parse_limit, query_param, Cursor};
use edgechat_core::json_out::{array, Object, ToJson};
use edgechat_core::time::rfc3339;
use edgechat_core::{ids, ApiError};

async fn require_admin(cx: &mut Ctx<'_>) -> Result<Principal, AppError> {
    let principal = authenticate(cx).await?;
    if principal.user.role != "admin" {
        return Err(ApiError::forbidden("this endpoint is for admins").into());
    }
    Ok(principal)
}

fn paging(cx: &Ctx<'_>) -> Result<(String, u32, Option<Cursor>), AppError> {
    let q = cx.query();
    let limit = parse_limit(query_param(&q, "limit").as_deref())?;
    let cursor = query_param(&q, "cursor").map(|c| Cursor::decode(&c)).transpose()?;
    Ok((q, limit, cursor))
}

pub async fn list_users(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let (q, limit, cursor) = paging(cx)?;
    let prefix = query_param(&q, "q").unwrap_or_default().trim().to_ascii_lowercase();
    let db = cx.db()?;
    let rows = store::list_users(&db, &like_prefix(&prefix), cursor.as_ref(), limit + 1).await?;
    let (rows, next_cursor) = page(rows, limit, |u| Cursor { key: u.created_at as i64, id: u.user_id.clone() });
    let data = array(rows.iter().map(admin_view));
    Ok(json_text(200, list_page(&data, next_cursor.as_deref())))
}

pub async fn update_user(cx: &mut Ctx<'_>) -> HandlerResult {
    let admin = require_admin(cx).await?;
    let target = cx.param("user_id").to_string();
    let req: UpdateUser = read_json(cx).await?;
    let plans = &cx.config.plans;
    req.validate(|p| plans.contains(p), target == admin.user.user_id)?;
    if !ids::is_valid("usr", &target) {
        return Err(ApiError::not_found("user").into());
    }
    let detail = Object::new()
        .opt_str("role", req.role.as_deref())
        .opt_str("plan", req.plan.as_deref())
        .opt_bool("is_disabled", req.is_disabled)
        .end();
    let change = UserChange { role: req.role.as_deref(), plan: req.plan.as_deref(), is_disabled: req.is_disabled };
    let audit_id = ids::new_id("aud", runtime::random_bytes()?);
    let db = cx.db()?;
    if !store::update_user(&db, &admin.user.user_id, &target, &change, &audit_id, &detail, runtime::now_ms()).await? {
        return Err(ApiError::not_found("user").into());
    }
    let user = crate::store::accounts::find_user(&db, &target).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(json_text(200, admin_view(&user)))
}

/// A user as admins see it: the API's view and whether the account is disabled.
fn admin_view(user: &edgechat_core::accounts::User) -> String {
    user.view().object().bool("is_disabled", user.is_disabled != 0).end()
}

pub async fn usage(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let q = cx.query();
    let group = UsageGroup::parse(query_param(&q, "group").as_deref())?;
    let days = parse_days(query_param(&q, "days").as_deref())?;
    let db = cx.db()?;
    let rows = store::usage(&db, group, runtime::now_ms().saturating_sub(days * 86_400_000)).await?;
    let group_name = query_param(&q, "group").unwrap_or_else(|| "day".into());
    Ok(json_text(200, Object::new().str("group", &group_name).num("days", days).raw("data", &rows.to_json()).end()))
}

pub async fn webhook_events(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let (_, limit, cursor) = paging(cx)?;
    let db = cx.db()?;
    let rows = store::webhook_events(&db, cursor.as_ref(), limit + 1).await?;
    let (rows, next_cursor) =
        page(rows, limit, |e| Cursor { key: e.received_at as i64, id: e.webhook_event_id.clone() });
    let data = array(rows.iter().map(|e| {
        Object::new()
            .str("webhook_event_id", &e.webhook_event_id)
            .str("source", &e.source)
            .str("event_type", &e.event_type)
            .str("event_created_at", &rfc3339(e.event_created_at.saturating_mul(1000)))
            .str("outcome", &e.outcome)
            .str("received_at", &rfc3339(e.received_at))
            .end()
    }));
    Ok(json_text(200, list_page(&data, next_cursor.as_deref())))
}

pub async fn audit(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let (_, limit, cursor) = paging(cx)?;
    let db = cx.db()?;
    let rows = store::audit(&db, cursor.as_ref(), limit + 1).await?;
    let (rows, next_cursor) = page(rows, limit, |a| Cursor { key: a.created_at as i64, id: a.admin_audit_id.clone() });
    let data = array(rows.iter().map(|a| {
        // The detail is JSON this worker wrote; anything else reads as null.
        let detail = if edgechat_core::json::parse_str(&a.detail).is_ok() { a.detail.as_str() } else { "null" };
        Object::new()
            .str("admin_audit_id", &a.admin_audit_id)
            .str("admin_user_id", &a.admin_user_id)
            .str("target_user_id", &a.target_user_id)
            .str("action", &a.action)
            .raw("detail", detail)
            .str("created_at", &rfc3339(a.created_at))
            .end()
    }));
    Ok(json_text(200, list_page(&data, next_cursor.as_deref())))
}
