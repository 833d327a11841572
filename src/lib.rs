//! edgechat Worker: the entry point. It only hands the request to the [`app`] pipeline; the
//! turn objects ([`objects::turns::UserTurns`]) are exported beside it.

mod app;
mod auth;
mod bindings;
mod cache;
mod chat;
mod context;
mod crypto;
mod gateway;
mod handlers;
mod http;
mod objects;
mod quota;
mod relay;
mod runtime;
mod side_call;
mod store;
mod tools;
mod upstream;

use wasm_bindgen::prelude::*;

/// The fetch handler (called by src/js/entry.js, through the trap guard, with the runtime's
/// request, env and context). It takes the runtime's objects as they are: workers-rs's
/// `#[event(fetch)]` converts the request eagerly, and its generated module would replace
/// entry.js and the trap guard.
///
/// A request answered without waiting on anything (`/health`, a preflight, most errors) gets
/// its Response back at once; any other gets a Promise of it. The request's future is polled
/// once here; if it waits, the same future is handed to the promise, whose first poll
/// registers the real waker (a JavaScript promise cannot settle before that poll: its
/// callbacks run as microtasks, after this call returns).
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: worker::Env, ctx: worker::worker_sys::Context) -> JsValue {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    // A panic logs its message and location before the trap (this replaces workers-rs's hook).
    console_error_panic_hook::set_once();
    let mut answer = Box::pin(app::handle(req, env, worker::Context::new(ctx)));
    match answer.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(response) => response.into(),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(async move { Ok(answer.await.into()) }).into(),
    }
}
