//! What the app takes from the runtime beside workers-rs's bindings: the clock, randomness, log
//! lines, request ids, the request's headers and abort signal, and streamed bodies.

pub mod request;
pub mod response;
pub mod streams;

use crate::http::AppError;
use std::cell::Cell;
use wasm_bindgen::{JsCast, JsValue};

/// Writes one log line (the runtime's log stream).
pub fn log(line: &str) {
    worker::console_log!("{line}");
}

/// Milliseconds since the Unix epoch (`SystemTime` panics on wasm).
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// `N` bytes from the runtime's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AppError::platform("random", e))?;
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
pub fn delay(ms: u64) -> worker::Delay {
    worker::Delay::from(std::time::Duration::from_millis(ms))
}
