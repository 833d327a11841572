//! Byte streams between Rust and the runtime: a body read whole with a cap, and a response
//! body written from Rust chunk by chunk (`Response::from_stream` over a bounded channel).

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortSignal, ReadableStream};
pub use worker::ByteStream;

/// A stream read whole.
pub enum Whole {
    Bytes(Vec<u8>),
    /// Longer than the cap (read on and discarded up to the drain cap).
    TooLarge,
    /// No chunk came within the stall time.
    Stalled,
}

/// Reads `stream` whole: at most `cap` bytes kept, up to `drain_cap` read and discarded past
/// it, and given up after `stall_ms` without a chunk (0: no limit). Errs with the stream's
/// error. Returning early cancels the stream.
pub async fn read_whole(stream: &ReadableStream, cap: u64, drain_cap: u64, stall_ms: u64) -> Result<Whole, String> {
    let mut chunks = ByteStream::from(stream.clone());
    let mut bytes = Vec::new();
    let mut size = 0u64;
    loop {
        let next = if stall_ms > 0 {
            match select(chunks.next(), super::delay(stall_ms)).await {
                Either::Left((next, _)) => next,
                Either::Right(_) => return Ok(Whole::Stalled),
            }
        } else {
            chunks.next().await
        };
        let chunk = match next {
            None => return Ok(Whole::Bytes(bytes)),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(chunk)) => chunk,
        };
        size += chunk.len() as u64;
        if size > cap {
            while size <= drain_cap {
                match chunks.next().await {
                    Some(Ok(more)) => size += more.len() as u64,
                    _ => break,
                }
            }
            return Ok(Whole::TooLarge);
        }
        if bytes.is_empty() {
            bytes = chunk;
        } else {
            bytes.extend_from_slice(&chunk);
        }
    }
}

/// Chunks a streamed response may hold for a slow client before sends wait.
const BUFFERED_CHUNKS: usize = 64;

/// The writing end of a response body: bytes go to the client in order; the body ends when
/// the writer is dropped.
pub struct BodyWriter {
    chunks: mpsc::Sender<Vec<u8>>,
    /// The request's abort signal: a departed client's body is not always cancelled.
    signal: Option<AbortSignal>,
}

/// A response body to `request` and the writer that fills it.
pub fn body_pipe(request: &web_sys::Request) -> (ReadableStream, BodyWriter) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(BUFFERED_CHUNKS);
    let body = worker::Response::from_stream(rx.map(Ok::<_, worker::Error>)).map(|r| r.body().clone());
    let readable = match body {
        Ok(worker::ResponseBody::Stream(readable)) => readable,
        // Not reached: from_stream always makes a stream body.
        _ => ReadableStream::new().unwrap_or_else(|_| JsValue::UNDEFINED.unchecked_into()),
    };
    (readable, BodyWriter { chunks: tx, signal: super::request::abort_signal(request) })
}

/// What a write found.
pub enum Sent {
    /// Taken (buffered for the client).
    Queued,
    /// The buffer is full: [`BodyWriter::drained`] waits for room.
    Full(Vec<u8>),
    /// The client has gone (the runtime cancelled the body, or the request was aborted).
    Gone,
}

impl BodyWriter {
    pub fn send(&mut self, bytes: Vec<u8>) -> Sent {
        if self.signal.as_ref().is_some_and(AbortSignal::aborted) {
            return Sent::Gone;
        }
        match self.chunks.try_send(bytes) {
            Ok(()) => Sent::Queued,
            Err(e) if e.is_full() => Sent::Full(e.into_inner()),
            Err(_) => Sent::Gone,
        }
    }

    /// The request's abort signal, for bodies piped by the runtime.
    pub fn abort_signal(&self) -> Option<&AbortSignal> {
        self.signal.as_ref()
    }

    /// Resolves true once the client has taken enough for one more chunk, false if it leaves
    /// first.
    pub async fn drained(&mut self) -> bool {
        std::future::poll_fn(|cx| self.chunks.poll_ready(cx)).await.is_ok()
    }
}

// workers-rs reads a body one chunk per call into wasm: src/js/gather.js reads it in JavaScript
// and hands over what has arrived in one piece.
#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/js/gather.js")]
extern "C" {
    type Gather;

    #[wasm_bindgen(constructor)]
    fn new(stream: &ReadableStream) -> Gather;
    #[wasm_bindgen(method)]
    fn take(this: &Gather) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn cancel(this: &Gather);
}

/// A body read in passes: each item is everything that arrived since the previous one.
/// Dropping it cancels the body.
pub struct Gathered {
    gather: Gather,
    pending: Option<wasm_bindgen_futures::JsFuture>,
}

impl Gathered {
    pub fn new(stream: &ReadableStream) -> Self {
        Self { gather: Gather::new(stream), pending: None }
    }
}

impl futures_util::Stream for Gathered {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        let pending = this.pending.get_or_insert_with(|| this.gather.take().into());
        let Poll::Ready(taken) = std::pin::Pin::new(pending).poll(cx) else { return Poll::Pending };
        this.pending = None;
        Poll::Ready(match taken {
            Ok(bytes) if bytes.is_null() => None,
            Ok(bytes) => Some(Ok(js_sys::Uint8Array::new(&bytes).to_vec())),
            Err(e) => Some(Err(super::error_text(&e))),
        })
    }
}

impl Drop for Gathered {
    fn drop(&mut self) {
        self.gather.cancel();
    }
}
