//! Pass-through streams: an upstream body whose format already matches the client's goes to
//! the client through a small JavaScript pump (src/js/relay.js), never chunk by chunk through
//! wasm; Rust reads what was relayed once, when the stream has ended.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;

#[wasm_bindgen(module = "/src/js/relay.js")]
extern "C" {
    type Relay;

    #[wasm_bindgen(constructor)]
    fn new(upstream: &ReadableStream, stall_ms: f64, heartbeat_ms: f64, keep_bytes: f64) -> Relay;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &Relay) -> ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn ended(this: &Relay) -> Promise;
    #[wasm_bindgen(method, getter)]
    fn truncated(this: &Relay) -> bool;
    #[wasm_bindgen(method)]
    fn bytes(this: &Relay) -> Uint8Array;
    #[wasm_bindgen(method)]
    fn finish(this: &Relay, tail: &Uint8Array) -> bool;
}

/// How a relayed stream ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ending {
    /// The upstream finished.
    End,
    /// The client left, or stopped reading for the stall timeout.
    Gone,
    /// The upstream sent nothing for the stall timeout.
    Stalled,
    /// The upstream's body broke off.
    Broken,
}

/// One pass-through stream.
pub struct Pump {
    relay: Relay,
}

impl Pump {
    /// Starts relaying `upstream`; `keep_bytes` bounds the copy kept for [`Pump::relayed`].
    pub fn start(upstream: &ReadableStream, stall_ms: u64, heartbeat_ms: u64, keep_bytes: usize) -> Self {
        Self { relay: Relay::new(upstream, stall_ms as f64, heartbeat_ms as f64, keep_bytes as f64) }
    }

    /// The stream to give the client as its response body.
    pub fn client_body(&self) -> ReadableStream {
        self.relay.readable()
    }

    /// Waits for the upstream to end or the client to leave.
    pub async fn ended(&self) -> Ending {
        match JsFuture::from(self.relay.ended()).await.ok().and_then(|v| v.as_string()).as_deref() {
            Some("end") => Ending::End,
            Some("gone") => Ending::Gone,
            Some("stalled") => Ending::Stalled,
            _ => Ending::Broken,
        }
    }

    /// Everything relayed so far (up to `keep_bytes`), and whether more was relayed than kept.
    pub fn relayed(&self) -> (Vec<u8>, bool) {
        (self.relay.bytes().to_vec(), self.relay.truncated())
    }

    /// Sends `tail` and closes the client's stream; false if the client has gone.
    pub fn finish(&self, tail: &[u8]) -> bool {
        self.relay.finish(&Uint8Array::from(tail))
    }
}
