//! edgechat Worker: the entry points. They only hand the request to the [`app`] pipeline.

mod app;
mod auth;
mod bindings;
mod cache;
mod chat;
mod crypto;
mod handlers;
mod http;
mod platform;
mod quota;
mod relay;
mod store;
mod upstream;

use worker::{event, Context, Env, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<Response> {
    Ok(app::handle(req, env, ctx).await)
}
