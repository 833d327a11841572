//! The Worker runtime as the app sees it: the clock, randomness, logging and timers here, and
//! bindings, D1, KV, outbound fetch and responses in the submodules. Nothing else in the
//! crate declares a JavaScript import.

pub mod d1;
pub mod env;
pub mod fetch;
#[cfg(any(target_arch = "wasm32", test))]
pub mod heap;
pub mod kv;
pub mod request;
pub mod streams;

use crate::http::AppError;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(line: &str);
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<(), JsValue>;
}

/// Writes one log line (the runtime's log stream).
pub fn log(line: &str) {
    console_log(line);
}

/// Writes one line to the runtime's error log (a panic's message, before the trap).
pub fn log_error(line: &str) {
    console_error(line);
}

/// Milliseconds since the Unix epoch (`Date.now()`; `SystemTime` panics on wasm).
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// `N` bytes from the runtime's CSPRNG (`crypto.getRandomValues`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    get_random_values(&mut buf).map_err(|e| AppError::platform("random", error_text(&e)))?;
    Ok(buf)
}

thread_local! {
    /// Random per isolate, then counted: request ids unique without a CSPRNG call each.
    static REQUEST_IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A new request id: this isolate's random prefix and a counter, as 32 hex characters.
pub fn new_request_id() -> String {
    REQUEST_IDS.with(|ids| {
        let (mut prefix, count) = ids.get();
        if count == 0 {
            prefix = u64::from_le_bytes(random_bytes().unwrap_or_default());
        }
        ids.set((prefix, count + 1));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&prefix.to_be_bytes());
        bytes[8..].copy_from_slice(&(count + 1).to_be_bytes());
        edgechat_core::request_id::generate(bytes)
    })
}

/// Size of this isolate's wasm linear memory, in KiB.
pub fn wasm_memory_kib() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64) * 64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// The text of a JavaScript error (its message), or the value as a string.
pub fn error_text(err: &JsValue) -> String {
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    err.as_string().unwrap_or_else(|| String::from(js_sys::JSON::stringify(err).unwrap_or_default()))
}

/// A timer: ready after `ms` milliseconds; dropping it first clears the timeout.
pub struct Delay {
    ms: u64,
    fired: Rc<Cell<bool>>,
    armed: Option<(Closure<dyn FnMut()>, JsValue)>,
}

impl Delay {
    pub fn ms(ms: u64) -> Self {
        Self { ms, fired: Rc::new(Cell::new(false)), armed: None }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.get() {
            return Poll::Ready(());
        }
        if self.armed.is_none() {
            let (fired, waker) = (self.fired.clone(), cx.waker().clone());
            let callback = Closure::<dyn FnMut()>::new(move || {
                fired.set(true);
                waker.wake_by_ref();
            });
            let id = set_timeout(callback.as_ref().unchecked_ref(), self.ms as f64);
            self.armed = Some((callback, id));
        }
        Poll::Pending
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        if let (Some((_, id)), false) = (&self.armed, self.fired.get()) {
            clear_timeout(id);
        }
    }
}
