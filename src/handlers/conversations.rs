//! `/api/v1/conversations` and `/api/v1/conversations/{conversation_id}[/messages]`: the
//! signed-in user's conversations and message trees (another user's ids answer 404).

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::cache;
use crate::http::{json, read_json, AppError, HandlerResult, Reply, JSON};
use crate::platform;
use crate::store::conversations::{self as store, ConversationUpdate, Messages, NewConversation};
use edgechat_core::conversations::{
    cache_keys, plan_import, validate_model_name, validate_system_prompt, validate_title, Conversation,
    CreateConversation, Message, MessageView, UpdateConversation,
};
use edgechat_core::cursor::{self, Cursor};
use edgechat_core::{ids, search, ApiError};
use serde::Serialize;

/// Cursor id marking a search page (its key is the offset into the ranked results).
const SEARCH_CURSOR_ID: &str = "search";

#[derive(Serialize)]
struct Page<T: Serialize> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

/// The routed model name for `requested` (the default when absent); 422 listing the valid
/// names when unknown.
fn known_model(cx: &Ctx<'_>, requested: Option<&str>) -> Result<String, AppError> {
    if let Some(name) = requested {
        validate_model_name(name)?;
    }
    Ok(cx.config.routes.resolve(requested).map_err(ApiError::validation)?.name.clone())
}

fn not_found() -> AppError {
    ApiError::not_found("conversation").into()
}

/// A JSON body served from or stored in the cache, with `x-edgechat-cache`.
fn cached_json(body: String, hit: bool) -> Reply {
    Reply::bytes(200, JSON, body.into_bytes()).with("x-edgechat-cache", if hit { "hit" } else { "miss" })
}

pub async fn create_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let req: CreateConversation = read_json(cx).await?;
    let limits = cx.config.conversation_limits;
    let title = validate_title(req.title.as_deref().unwrap_or(""), &limits)?;
    let model = known_model(cx, req.model.as_deref())?;
    let system_prompt = validate_system_prompt(req.system_prompt.as_deref(), &limits)?;
    let plan = plan_import(req.messages, &limits)?;
    let now = platform::now_ms();

    let mut message_ids = Vec::with_capacity(plan.len());
    for _ in &plan {
        message_ids.push(ids::new_id("msg", platform::random_bytes()?));
    }
    let rows: Vec<serde_json::Value> = plan
        .iter()
        .enumerate()
        .map(|(i, m)| {
            serde_json::json!({
                "message_id": message_ids[i],
                "parent_id": m.parent_index.map(|p| message_ids[p].as_str()),
                "role": m.role,
                "content": m.content,
                "created_at": now + i as u64,
            })
        })
        .collect();
    let conversation = Conversation {
        conversation_id: ids::new_id("cnv", platform::random_bytes()?),
        title,
        model,
        system_prompt,
        message_count: plan.len() as u64,
        created_at: now,
        updated_at: now,
    };
    let db = cx.db()?;
    let new = NewConversation {
        conversation_id: &conversation.conversation_id,
        user_id: &principal.user.user_id,
        title: &conversation.title,
        model: &conversation.model,
        system_prompt: conversation.system_prompt.as_deref(),
        messages_json: (!rows.is_empty()).then(|| serde_json::Value::Array(rows).to_string()),
        message_count: conversation.message_count,
        now,
    };
    if !store::create(&db, &new, limits.conversations_per_user).await? {
        return Err(ApiError::conflict(
            "conversation_limit_reached",
            format!("at most {} conversations per user: delete some first", limits.conversations_per_user),
        )
        .into());
    }
    json(201, &conversation.view())
}

pub async fn list_conversations(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let q = cx.query();
    let limit = cursor::parse_limit(cursor::query_param(&q, "limit").as_deref())?;
    let after = cursor::query_param(&q, "cursor").map(|c| Cursor::decode(&c)).transpose()?;
    let db = cx.db()?;
    let user = &principal.user;

    if let Some(text) = cursor::query_param(&q, "q") {
        let fts = search::fts_query(&text)?;
        let offset = match &after {
            None => 0,
            Some(c) if c.id == SEARCH_CURSOR_ID && c.key >= 0 => c.key as u64,
            Some(_) => {
                return Err(ApiError::bad_request("invalid_cursor", "this cursor belongs to another listing").into())
            }
        };
        let rows = store::search(&db, &user.user_id, &fts, limit + 1, offset).await?;
        let more = rows.len() > limit as usize;
        let data: Vec<_> = rows.iter().take(limit as usize).map(Conversation::view).collect();
        let next_cursor =
            more.then(|| Cursor { key: (offset + u64::from(limit)) as i64, id: SEARCH_CURSOR_ID.into() }.encode());
        return json(200, &Page { data, next_cursor });
    }
    if after.as_ref().is_some_and(|c| c.id == SEARCH_CURSOR_ID) {
        return Err(ApiError::bad_request("invalid_cursor", "this cursor belongs to a search").into());
    }

    let cache_key = after.is_none().then(|| cache_keys::list_first_page(&user.user_id, user.cache_version, limit));
    if let Some(key) = &cache_key {
        if let Some(body) = cache::get(cx, key).await {
            return Ok(cached_json(body, true));
        }
    }
    let rows = store::list(&db, &user.user_id, after.as_ref(), limit + 1).await?;
    let (rows, next_cursor) =
        cursor::page(rows, limit, |c| Cursor { key: c.updated_at as i64, id: c.conversation_id.clone() });
    let data: Vec<_> = rows.iter().map(Conversation::view).collect();
    let body = serde_json::to_string(&Page { data, next_cursor }).map_err(|e| AppError::platform("serialize", e))?;
    match cache_key {
        Some(key) => {
            cache::put_later(cx, key, body.clone());
            Ok(cached_json(body, false))
        }
        None => Ok(Reply::bytes(200, JSON, body.into_bytes())),
    }
}

/// The user's conversation named by the path, or 404 (also for malformed ids).
pub async fn owned_conversation(cx: &mut Ctx<'_>, user_id: &str) -> Result<Conversation, AppError> {
    let id = cx.param("conversation_id").to_string();
    if !ids::is_valid("cnv", &id) {
        return Err(not_found());
    }
    let db = cx.db()?;
    store::find(&db, &id, user_id).await?.ok_or_else(not_found)
}

/// The path's conversation if it is the user's (404 otherwise), with `messages` of it read in
/// the same round trip.
pub async fn owned_conversation_with(
    cx: &mut Ctx<'_>,
    user_id: &str,
    messages: Messages<'_>,
) -> Result<(Conversation, Vec<Message>), AppError> {
    let id = cx.param("conversation_id").to_string();
    if !ids::is_valid("cnv", &id) {
        return Err(not_found());
    }
    let db = cx.db()?;
    let max_depth = cx.config.conversation_limits.messages_per_conversation;
    store::find_with_messages(&db, &id, user_id, messages, max_depth).await?.ok_or_else(not_found)
}

pub async fn get_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let id = cx.param("conversation_id").to_string();
    if !ids::is_valid("cnv", &id) {
        return Err(not_found());
    }
    let key = cache_keys::conversation(&principal.user.user_id, principal.user.cache_version, &id);
    if let Some(body) = cache::get(cx, &key).await {
        return Ok(cached_json(body, true));
    }
    let conversation = owned_conversation(cx, &principal.user.user_id).await?;
    let body = serde_json::to_string(&conversation.view()).map_err(|e| AppError::platform("serialize", e))?;
    cache::put_later(cx, key, body.clone());
    Ok(cached_json(body, false))
}

pub async fn update_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let req: UpdateConversation = read_json(cx).await?;
    if req.title.is_none() && req.model.is_none() && req.system_prompt.is_none() {
        return Err(ApiError::validation("nothing to update: send title, model and/or system_prompt").into());
    }
    let limits = cx.config.conversation_limits;
    let title = req.title.as_deref().map(|t| validate_title(t, &limits)).transpose()?;
    if let Some(model) = &req.model {
        known_model(cx, Some(model))?;
    }
    let system_prompt = match &req.system_prompt {
        Some(p) => Some(validate_system_prompt(p.as_deref(), &limits)?),
        None => None,
    };
    let mut conversation = owned_conversation(cx, &principal.user.user_id).await?;
    if let Some(t) = title {
        conversation.title = t;
    }
    if let Some(m) = req.model {
        conversation.model = m;
    }
    if let Some(p) = system_prompt {
        conversation.system_prompt = p;
    }
    conversation.updated_at = platform::now_ms();
    let db = cx.db()?;
    let update = ConversationUpdate {
        title: &conversation.title,
        model: &conversation.model,
        system_prompt: conversation.system_prompt.as_deref(),
        now: conversation.updated_at,
    };
    if !store::update(&db, &conversation.conversation_id, &principal.user.user_id, &update).await? {
        return Err(not_found());
    }
    json(200, &conversation.view())
}

pub async fn delete_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let id = cx.param("conversation_id").to_string();
    let db = cx.db()?;
    if !ids::is_valid("cnv", &id) || !store::delete(&db, &id, &principal.user.user_id).await? {
        return Err(not_found());
    }
    Ok(Reply::empty(204))
}

pub async fn list_messages(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let q = cx.query();
    let limit = cursor::parse_limit(cursor::query_param(&q, "limit").as_deref())?;
    let after = cursor::query_param(&q, "cursor").map(|c| Cursor::decode(&c)).transpose()?;
    let leaf = cursor::query_param(&q, "leaf");
    let user_id = &principal.user.user_id;

    if let Some(leaf) = leaf {
        let messages = if ids::is_valid("msg", &leaf) { Messages::PathTo(&leaf) } else { Messages::None };
        let (_, path) = owned_conversation_with(cx, user_id, messages).await?;
        if path.is_empty() {
            return Err(ApiError::not_found("message").into());
        }
        let data: Vec<MessageView<'_>> = path.iter().map(|m| m.view()).collect();
        return json(200, &Page { data, next_cursor: None });
    }
    let page = Messages::Page { after: after.as_ref(), fetch: limit + 1 };
    let (_, rows) = owned_conversation_with(cx, user_id, page).await?;
    let (rows, next_cursor) =
        cursor::page(rows, limit, |m| Cursor { key: m.created_at as i64, id: m.message_id.clone() });
    let data: Vec<MessageView<'_>> = rows.iter().map(|m| m.view()).collect();
    json(200, &Page { data, next_cursor })
}
