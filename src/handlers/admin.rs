//! `/api/v1/admin/*`: user search and changes (audited), usage by user, model or day, and
//! the webhook and audit logs. Admins only; everyone else gets 403.

use crate::app::Ctx;
use crate::auth::{authenticate, Principal};
use crate::http::{json, list_page, read_json, to_json, AppError, HandlerResult};
use crate::runtime;
use crate::store::admin::{self as store, UserChange};
use edgechat_core::accounts::{Role, User};
use edgechat_core::admin::{like_prefix, parse_days, UpdateUser, UsageGroup, UsageReport};
use edgechat_core::cursor::{page, parse_limit, query_param, Cursor};
use edgechat_core::ids::{AuditId, UserId};
use edgechat_core::ApiError;

async fn require_admin(cx: &mut Ctx<'_>) -> Result<Principal, AppError> {
    let principal = authenticate(cx).await?;
    if principal.user.role != Role::Admin {
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
    let data: Vec<_> = rows.iter().map(User::admin_view).collect();
    list_page(200, &data, next_cursor)
}

pub async fn update_user(cx: &mut Ctx<'_>) -> HandlerResult {
    let admin = require_admin(cx).await?;
    let target = cx.param("user_id").to_string();
    let req: UpdateUser = read_json(cx).await?;
    let plans = &cx.config.plans;
    req.validate(|p| plans.contains(p), target == admin.user.user_id)?;
    let Some(target) = UserId::parse(&target) else {
        return Err(ApiError::not_found("user").into());
    };
    let detail = to_json(&req)?;
    let change = UserChange { role: req.role, plan: req.plan.as_deref(), is_disabled: req.is_disabled };
    let audit_id = AuditId::new(runtime::random_bytes()?);
    let db = cx.db()?;
    if !store::update_user(&db, &admin.user.user_id, &target, &change, &audit_id, &detail, runtime::now_ms()).await? {
        return Err(ApiError::not_found("user").into());
    }
    let user = crate::store::accounts::find_user(&db, &target).await?.ok_or_else(|| ApiError::not_found("user"))?;
    json(200, &user.admin_view())
}

pub async fn usage(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let q = cx.query();
    let group = UsageGroup::parse(query_param(&q, "group").as_deref())?;
    let days = parse_days(query_param(&q, "days").as_deref())?;
    let db = cx.db()?;
    let rows = store::usage(&db, group, runtime::now_ms().saturating_sub(days * 86_400_000)).await?;
    let group_name = query_param(&q, "group").unwrap_or_else(|| "day".into());
    json(200, &UsageReport { group: &group_name, days, data: &rows })
}

pub async fn webhook_events(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let (_, limit, cursor) = paging(cx)?;
    let db = cx.db()?;
    let rows = store::webhook_events(&db, cursor.as_ref(), limit + 1).await?;
    let (rows, next_cursor) =
        page(rows, limit, |e| Cursor { key: e.received_at as i64, id: e.webhook_event_id.clone() });
    let data: Vec<_> = rows.iter().map(|e| e.view()).collect();
    list_page(200, &data, next_cursor)
}

pub async fn audit(cx: &mut Ctx<'_>) -> HandlerResult {
    require_admin(cx).await?;
    let (_, limit, cursor) = paging(cx)?;
    let db = cx.db()?;
    let rows = store::audit(&db, cursor.as_ref(), limit + 1).await?;
    let (rows, next_cursor) = page(rows, limit, |a| Cursor { key: a.created_at as i64, id: a.admin_audit_id.clone() });
    let data: Vec<_> = rows.iter().map(|a| a.view()).collect();
    list_page(200, &data, next_cursor)
}
