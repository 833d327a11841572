//! Pass-through streams: an upstream body whose format already matches the client's is piped
//! to the client by the runtime (src/js/relay.js tees it), never chunk by chunk through wasm;
//! Rust reads a copy of what was relayed once, when the stream has ended. A stream whose usage
//! the gateway asked for on its own reaches the client without it.

use crate::upstream::Pacing;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStream};

// workers-rs has no way to tee a body so that the runtime pipes it to the client while Rust
// reads a copy: src/js/relay.js does it.
#[wasm_bindgen(module = "/src/js/relay.js")]
extern "C" {
    type Relay;

    #[wasm_bindgen(constructor)]
    fn new(
        upstream: &ReadableStream,
        stall_ms: f64,
        heartbeat_ms: f64,
        keep_bytes: f64,
        stall_tail: &Uint8Array,
        error_tail: &Uint8Array,
        signal: Option<&AbortSignal>,
        strip_usage: bool,
    ) -> Relay;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &Relay) -> ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn ended(this: &Relay) -> Promise;
    #[wasm_bindgen(method, getter)]
    fn truncated(this: &Relay) -> bool;
    #[wasm_bindgen(method)]
    fn bytes(this: &Relay) -> Uint8Array;
    #[wasm_bindgen(method)]
    fn tail(this: &Relay) -> Uint8Array;
}

/// How a relayed stream ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ending {
    /// The upstream finished.
    End,
    /// The client left.
    Gone,
    /// The upstream sent nothing for the stall timeout (the caller aborts it).
    Stalled,
    /// The upstream's body broke off.
    Broken,
}

/// One pass-through stream.
pub struct Pump {
    relay: Relay,
}

impl Pump {
    /// Starts relaying `upstream` by the `pacing` rules: heartbeats until its first bytes, then
    /// `tails.0` (an error event) if it stalls or `tails.1` if the upstream breaks off first;
    /// `keep_bytes` bounds the copy kept for [`Pump::relayed`]. `signal` (the request's) ends
    /// the relay as soon as the client leaves. With `strip_usage` the client's stream loses
    /// the usage event and each chunk's `"usage":null` (the gateway asked for them, not the
    /// client); the copy keeps them.
    pub fn start(
        upstream: &ReadableStream,
        pacing: Pacing,
        keep_bytes: usize,
        tails: (&[u8], &[u8]),
        signal: Option<&AbortSignal>,
        strip_usage: bool,
    ) -> Self {
        let (stall, error) = (Uint8Array::from(tails.0), Uint8Array::from(tails.1));
        let (stall_ms, heartbeat_ms) = (pacing.stall_ms as f64, pacing.heartbeat_ms as f64);
        let keep = keep_bytes as f64;
        let relay = Relay::new(upstream, stall_ms, heartbeat_ms, keep, &stall, &error, signal, strip_usage);
        Self { relay }
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

    /// The stream's last bytes (64 KiB or more, from wherever a chunk began), kept whatever
    /// `keep_bytes` cut: where the usage event of a long stream is.
    pub fn last_bytes(&self) -> Vec<u8> {
        self.relay.tail().to_vec()
    }
}
