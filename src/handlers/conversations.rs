//! `/api/v1/conversations` and `/api/v1/conversations/{conversation_id}[/messages]`: the
//! signed-in user's conversations and message trees (another user's ids answer 404).

use crate::app::Ctx;
use crate::auth::{authenticate, authenticate_checked, authenticate_reading, check_credential, Checked, Principal};
use crate::cache;
use crate::http::{json, list_page, read_json, to_json, AppError, HandlerResult, Reply, JSON};
use crate::runtime;
use crate::store::conversations::{self as store, ConversationUpdate, Messages, NewConversation};
use crate::store::reads::Read;
use edgechat_core::conversations::{
    cache_keys, encode_tools, plan_import, validate_model_name, validate_system_prompt, validate_title, validate_tools,
    Conversation, CreateConversation, ImportedRow, Message, MessageView, UpdateConversation,
};
use edgechat_core::cursor::{self, Cursor};
use edgechat_core::ids::{ConversationId, MessageId};
use edgechat_core::views::Page;
use edgechat_core::{search, ApiError};

/// Cursor id marking a search page (its key is the offset into the ranked results).
const SEARCH_CURSOR_ID: &str = "search";

/// The routed model name for `requested` (the default when absent); 422 listing the valid
/// names when unknown.
fn known_model(cx: &Ctx<'_>, requested: Option<&str>) -> Result<String, AppError> {
    if let Some(name) = requested {
        validate_model_name(name)?;
    }
    Ok(cx.config.routes.resolve_chat(requested).map_err(ApiError::validation)?.name.clone())
}

pub(crate) fn not_found() -> AppError {
    ApiError::not_found("conversation").into()
}

/// A JSON body served from the cache, with `x-edgechat-cache: hit`.
fn cache_hit(body: String) -> Reply {
    Reply::bytes(200, JSON, body.into_bytes()).with("x-edgechat-cache", "hit")
}

/// A JSON body just stored in the cache, with `x-edgechat-cache: miss`.
fn cache_miss(body: String) -> Reply {
    Reply::bytes(200, JSON, body.into_bytes()).with("x-edgechat-cache", "miss")
}

pub async fn create_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let req: CreateConversation = read_json(cx).await?;
    let limits = cx.config.conversation_limits;
    let title = validate_title(req.title.as_deref().unwrap_or(""), &limits)?;
    let model = known_model(cx, req.model.as_deref())?;
    let system_prompt = validate_system_prompt(req.system_prompt.as_deref(), &limits)?;
    let tools = req.tools.as_deref().map(validate_tools).transpose()?.map(|t| encode_tools(&t));
    let plan = plan_import(req.messages, &limits)?;
    let now = runtime::now_ms();

    let mut message_ids = Vec::with_capacity(plan.len());
    for _ in &plan {
        message_ids.push(MessageId::new(runtime::random_bytes()?));
    }
    let rows: Vec<ImportedRow<'_>> = plan
        .iter()
        .enumerate()
        .map(|(i, m)| ImportedRow {
            message_id: &message_ids[i],
            parent_id: m.parent_index.map(|p| message_ids[p].as_str()),
            role: m.role,
            content: &m.content,
            created_at: now + i as u64,
        })
        .collect();
    let conversation = Conversation {
        conversation_id: ConversationId::new(runtime::random_bytes()?),
        title,
        model,
        system_prompt,
        tools,
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
        tools: conversation.tools.as_deref(),
        messages_json: if rows.is_empty() { None } else { Some(to_json(&rows)?) },
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

/// What a conversation list request asks for.
enum Listing {
    Search { fts: String, offset: u64, limit: u32 },
    First { limit: u32 },
    After { after: Cursor, limit: u32 },
}

fn parse_listing(q: &str) -> Result<Listing, AppError> {
    let limit = cursor::parse_limit(cursor::query_param(q, "limit").as_deref())?;
    let after = cursor::query_param(q, "cursor").map(|c| Cursor::decode(&c)).transpose()?;
    if let Some(text) = cursor::query_param(q, "q") {
        let fts = search::fts_query(&text)?;
        let offset = match &after {
            None => 0,
            Some(c) if c.id == SEARCH_CURSOR_ID && c.key >= 0 => c.key as u64,
            Some(_) => {
                return Err(ApiError::bad_request("invalid_cursor", "this cursor belongs to another listing").into())
            }
        };
        return Ok(Listing::Search { fts, offset, limit });
    }
    match after {
        Some(c) if c.id == SEARCH_CURSOR_ID => {
            Err(ApiError::bad_request("invalid_cursor", "this cursor belongs to a search").into())
        }
        Some(after) => Ok(Listing::After { after, limit }),
        None => Ok(Listing::First { limit }),
    }
}

pub async fn list_conversations(cx: &mut Ctx<'_>) -> HandlerResult {
    // A bad query is answered after authentication (401 comes first), but a good one is known
    // before it, so that its D1 read goes in the same round trip as the session check.
    let listing = parse_listing(&cx.query());
    let read = match &listing {
        Ok(Listing::Search { fts, offset, limit }) => {
            Some(Read::ConversationSearch { fts, fetch: limit + 1, offset: *offset })
        }
        Ok(Listing::After { after, limit }) => Some(Read::ConversationsAfter { after, fetch: limit + 1 }),
        _ => None,
    };
    let (principal, results) = authenticate_reading(cx, read.as_slice()).await?;
    let user = &principal.user;
    let limit = match listing? {
        Listing::Search { offset, limit, .. } => {
            let rows = store::conversations(results.first())?;
            let more = rows.len() > limit as usize;
            let data: Vec<_> = rows.iter().take(limit as usize).map(Conversation::view).collect();
            let next_cursor =
                more.then(|| Cursor { key: (offset + u64::from(limit)) as i64, id: SEARCH_CURSOR_ID.into() }.encode());
            return list_page(200, &data, next_cursor);
        }
        Listing::After { limit, .. } => {
            let body = conversation_page(store::conversations(results.first())?, limit)?;
            return Ok(Reply::bytes(200, JSON, body.into_bytes()));
        }
        Listing::First { limit } => limit,
    };
    let key = cache_keys::list_first_page(&user.user_id, user.cache_version, limit);
    if let Some(body) = cache::get(cx, &key).await {
        return Ok(cache_hit(body));
    }
    let db = cx.db()?;
    let body = conversation_page(store::list(&db, &user.user_id, None, limit + 1).await?, limit)?;
    cache::put_later(cx, key, body.clone());
    Ok(cache_miss(body))
}

/// A page of conversations as JSON, from `limit + 1` rows, newest first.
fn conversation_page(rows: Vec<Conversation>, limit: u32) -> Result<String, AppError> {
    let (rows, next_cursor) =
        cursor::page(rows, limit, |c| Cursor { key: c.updated_at as i64, id: c.conversation_id.to_string() });
    let data: Vec<_> = rows.iter().map(Conversation::view).collect();
    to_json(&Page::new(data, next_cursor))
}

/// The user's conversation named by the path, or 404 (also for malformed ids).
pub async fn owned_conversation(cx: &mut Ctx<'_>, user_id: &str) -> Result<Conversation, AppError> {
    let id = ConversationId::parse(cx.param("conversation_id")).ok_or_else(not_found)?;
    let db = cx.db()?;
    store::find(&db, &id, user_id).await?.ok_or_else(not_found)
}

/// Authenticates the request and reads the path's conversation, if it is the user's, with
/// `messages` of it: one round trip for an access token. Only authentication fails here, so
/// that the caller answers its other errors in its own order.
pub async fn authenticate_for_conversation(
    cx: &mut Ctx<'_>,
    checked: Checked,
    messages: Messages<'_>,
) -> Result<(Principal, Option<(Conversation, Vec<Message>)>), AppError> {
    let id = ConversationId::parse(cx.param("conversation_id"));
    let max_depth = cx.config.conversation_limits.messages_per_conversation;
    let read = id.as_deref().map(|conversation_id| Read::Conversation { conversation_id, messages, max_depth });
    let (principal, results) = authenticate_checked(cx, checked, read.as_slice()).await?;
    let found = if id.is_some() { store::conversation_with_messages(&results)? } else { None };
    Ok((principal, found))
}

pub async fn get_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let id = ConversationId::parse(cx.param("conversation_id")).ok_or_else(not_found)?;
    let key = cache_keys::conversation(&principal.user.user_id, principal.user.cache_version, &id);
    if let Some(body) = cache::get(cx, &key).await {
        return Ok(cache_hit(body));
    }
    let conversation = owned_conversation(cx, &principal.user.user_id).await?;
    let body = to_json(&conversation.view())?;
    cache::put_later(cx, key, body.clone());
    Ok(cache_miss(body))
}

pub async fn update_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    // The credential first, then the body; the conversation is read with the session check.
    let checked = check_credential(cx).await?;
    let req = read_json::<UpdateConversation>(cx).await;
    let (principal, found) = authenticate_for_conversation(cx, checked, Messages::None).await?;
    let req = req?;
    if req.title.is_none() && req.model.is_none() && req.system_prompt.is_none() && req.tools.is_none() {
        return Err(ApiError::validation("nothing to update: send title, model, system_prompt and/or tools").into());
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
    let tools = match &req.tools {
        Some(list) => Some(list.as_deref().map(validate_tools).transpose()?.map(|t| encode_tools(&t))),
        None => None,
    };
    let (mut conversation, _) = found.ok_or_else(not_found)?;
    if let Some(t) = title {
        conversation.title = t;
    }
    if let Some(m) = req.model {
        conversation.model = m;
    }
    if let Some(p) = system_prompt {
        conversation.system_prompt = p;
    }
    if let Some(t) = tools {
        conversation.tools = t;
    }
    conversation.updated_at = runtime::now_ms();
    let db = cx.db()?;
    let update = ConversationUpdate {
        title: &conversation.title,
        model: &conversation.model,
        system_prompt: conversation.system_prompt.as_deref(),
        tools: conversation.tools.as_deref(),
        now: conversation.updated_at,
    };
    if !store::update(&db, &conversation.conversation_id, &principal.user.user_id, &update).await? {
        return Err(not_found());
    }
    json(200, &conversation.view())
}

pub async fn delete_conversation(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let id = ConversationId::parse(cx.param("conversation_id"));
    let db = cx.db()?;
    let Some(id) = id else { return Err(not_found()) };
    if !store::delete(&db, &id, &principal.user.user_id).await? {
        return Err(not_found());
    }
    Ok(Reply::empty(204))
}

pub async fn list_messages(cx: &mut Ctx<'_>) -> HandlerResult {
    let q = cx.query();
    // Errors in the query are answered after authentication, in this order.
    let limit = cursor::parse_limit(cursor::query_param(&q, "limit").as_deref());
    let after = cursor::query_param(&q, "cursor").map(|c| Cursor::decode(&c)).transpose();
    let leaf = cursor::query_param(&q, "leaf");
    let messages = match (&limit, &after, &leaf) {
        (Ok(_), Ok(_), Some(leaf)) if MessageId::parse(leaf).is_some() => Messages::PathTo(leaf),
        (Ok(limit), Ok(after), None) => Messages::Page { after: after.as_ref(), fetch: limit + 1 },
        _ => Messages::None,
    };
    let checked = check_credential(cx).await?;
    let (_, found) = authenticate_for_conversation(cx, checked, messages).await?;
    let limit = limit?;
    after?;
    let (_, rows) = found.ok_or_else(not_found)?;
    if leaf.is_some() {
        if rows.is_empty() {
            return Err(ApiError::not_found("message").into());
        }
        let data: Vec<MessageView<'_>> = rows.iter().map(|m| m.view()).collect();
        return list_page(200, &data, None);
    }
    let (rows, next_cursor) =
        cursor::page(rows, limit, |m| Cursor { key: m.created_at as i64, id: m.message_id.to_string() });
    let data: Vec<MessageView<'_>> = rows.iter().map(|m| m.view()).collect();
    list_page(200, &data, next_cursor)
}
