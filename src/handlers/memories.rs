//! `/api/v1/memories` and `/api/v1/memories/{memory_id}`: the notes kept about the signed-in
//! user (another user's ids answer 404), the same rows `remember`, `recall` and `forget` use.

use crate::app::Ctx;
use crate::auth::{authenticate, authenticate_reading};
use crate::http::{json, list_page, read_json, AppError, HandlerResult, Reply};
use crate::runtime;
use crate::store::memories as store;
use crate::store::reads::Read;
use edgechat_core::agent::memories::{Memory, Remember};
use edgechat_core::cursor::{self, Cursor};
use edgechat_core::ids::MemoryId;
use edgechat_core::{search, ApiError};

/// Cursor id marking a search page (its key is the offset into the ranked results).
const SEARCH_CURSOR_ID: &str = "search";

pub async fn create_memory(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let content = read_json::<Remember>(cx).await?.validate()?;
    let memory = Memory { memory_id: MemoryId::new(runtime::random_bytes()?), content, created_at: runtime::now_ms() };
    let db = cx.db()?;
    let caps = cx.config.agent_caps;
    let user_id = &principal.user.user_id;
    if !store::insert(&db, &memory.memory_id, user_id, &memory.content, memory.created_at, caps.memories_per_user)
        .await?
    {
        return Err(caps.memories_reached().into());
    }
    json(201, &memory.view())
}

/// What a memory list request asks for.
enum Listing {
    Search { fts: String, offset: u64 },
    Page { after: Option<Cursor> },
}

fn parse_listing(q: &str) -> Result<(Listing, u32), AppError> {
    let limit = cursor::parse_limit(cursor::query_param(q, "limit").as_deref())?;
    let after = cursor::query_param(q, "cursor").map(|c| Cursor::decode(&c)).transpose()?;
    let listing = match (cursor::query_param(q, "q"), after) {
        (Some(text), None) => Listing::Search { fts: search::fts_query(&text)?, offset: 0 },
        (Some(text), Some(c)) if c.id == SEARCH_CURSOR_ID && c.key >= 0 => {
            Listing::Search { fts: search::fts_query(&text)?, offset: c.key as u64 }
        }
        (None, after) if after.as_ref().is_none_or(|c| c.id != SEARCH_CURSOR_ID) => Listing::Page { after },
        _ => return Err(ApiError::bad_request("invalid_cursor", "this cursor belongs to another listing").into()),
    };
    Ok((listing, limit))
}

pub async fn list_memories(cx: &mut Ctx<'_>) -> HandlerResult {
    // Errors in the query are answered after authentication's; a good query is read in the
    // session check's round trip.
    let listing = parse_listing(&cx.query());
    let read = match &listing {
        Ok((Listing::Search { fts, offset }, limit)) => {
            Some(Read::MemorySearch { fts, fetch: limit + 1, offset: *offset })
        }
        Ok((Listing::Page { after }, limit)) => Some(Read::Memories { after: after.as_ref(), fetch: limit + 1 }),
        Err(_) => None,
    };
    let (_, results) = authenticate_reading(cx, read.as_slice()).await?;
    let (listing, limit) = listing?;
    let rows = store::memories(results.first())?;
    let (rows, next_cursor) = match listing {
        Listing::Search { offset, .. } => {
            let more = rows.len() > limit as usize;
            let next = more.then(|| Cursor { key: (offset + u64::from(limit)) as i64, id: SEARCH_CURSOR_ID.into() });
            (rows.into_iter().take(limit as usize).collect(), next.map(|c| c.encode()))
        }
        Listing::Page { .. } => {
            cursor::page(rows, limit, |m| Cursor { key: m.created_at as i64, id: m.memory_id.to_string() })
        }
    };
    let data: Vec<_> = rows.iter().map(Memory::view).collect();
    list_page(200, &data, next_cursor)
}

pub async fn delete_memory(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let not_found = || AppError::from(ApiError::not_found("memory"));
    let id = MemoryId::parse(cx.param("memory_id")).ok_or_else(not_found)?;
    let db = cx.db()?;
    if !store::delete(&db, &id, &principal.user.user_id).await? {
        return Err(not_found());
    }
    Ok(Reply::empty(204))
}
