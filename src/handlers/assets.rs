//! The chat page: static files from the `ASSETS` binding, answered through the worker so
//! they carry the security headers.

use crate::app::Ctx;
use crate::http::{AppError, HandlerResult};

pub async fn serve(cx: &mut Ctx<'_>) -> HandlerResult {
    let assets = cx.env.assets("ASSETS").map_err(|e| AppError::platform("binding ASSETS", e))?;
    let req = cx.req.clone().map_err(|e| AppError::platform("assets request", worker::Error::from(e)))?;
    let resp = assets.fetch_request(worker::Request::from(req)).await.map_err(|e| AppError::platform("assets", e))?;
    // A fetched response's headers are immutable: copy them so the pipeline can add ours.
    let headers = resp.headers().clone();
    Ok(resp.with_headers(headers))
}
