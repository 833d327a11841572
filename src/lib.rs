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
/// A request answered without waiting on anything (`/health`, a preflight, most errors) gets
/// its Response back at once; any other gets a Promise of it. The request's future is polled
/// once here; if it waits, the same future is handed to the promise, whose first poll
/// registers the real waker (a JavaScript promise cannot settle before that poll: its
/// callbacks run as microtasks, after this call returns).
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: platform::env::Env, ctx: platform::env::Context) -> JsValue {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut answer = Box::pin(app::handle(req, env, ctx));
    match answer.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(response) => response.into(),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(async move { Ok(answer.await.into()) }).into(),
    }
}
