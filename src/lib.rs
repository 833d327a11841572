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

use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| platform::log_error(&info.to_string())));
}

/// The fetch handler (called by src/js/entry.js with the runtime's request, env and context).
#[wasm_bindgen]
pub async fn fetch(req: web_sys::Request, env: platform::env::Env, ctx: platform::env::Context) -> web_sys::Response {
    app::handle(req, env, ctx).await
}
