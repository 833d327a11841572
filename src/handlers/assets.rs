//! The chat page: static files from the `ASSETS` binding, answered through the worker so
//! they carry the security headers.

use crate::app::Ctx;
use crate::bindings;
use crate::http::{AppError, HandlerResult, Reply};
use crate::runtime::response::Payload;

pub async fn serve(cx: &mut Ctx<'_>) -> HandlerResult {
    let assets = bindings::assets(cx.env)?;
    let resp = assets.fetch_request(Clone::clone(&cx.req)).await.map_err(|e| AppError::platform("assets", e))?;
    Ok(Reply { status: resp.status_code(), headers: Vec::new(), payload: Payload::Fetched(resp) })
}
