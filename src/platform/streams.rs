//! Byte streams between Rust and the runtime: a JavaScript `ReadableStream` read as chunks
//! of bytes, and a response body written chunk by chunk from Rust.

use super::error_text;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;

/// A JavaScript byte stream read from Rust, one chunk per read. Dropped before its end, it
/// cancels the stream (an upstream body: the runtime stops fetching it).
pub struct ByteStream {
    reader: Option<ChunkReader>,
    pending: Option<JsFuture>,
}

impl ByteStream {
    pub fn new(raw: ReadableStream) -> Self {
        Self { reader: Some(ChunkReader::new(&raw)), pending: None }
    }
}

impl Stream for ByteStream {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(reader) = &this.reader else { return Poll::Ready(None) };
        let read = this.pending.get_or_insert_with(|| JsFuture::from(reader.next()));
        let Poll::Ready(result) = Pin::new(read).poll(cx) else { return Poll::Pending };
        this.pending = None;
        Poll::Ready(match result {
            Ok(chunk) if chunk.is_null() => {
                this.reader = None;
                None
            }
            Ok(chunk) => Some(Ok(js_sys::Uint8Array::new(&chunk).to_vec())),
            Err(e) => {
                this.reader = None;
                Some(Err(error_text(&e)))
            }
        })
    }
}

impl Drop for ByteStream {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.cancel();
        }
    }
}

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = readWhole)]
    fn read_whole_js(stream: &ReadableStream, cap: f64, drain_cap: f64, stall_ms: f64) -> js_sys::Promise;

    type ChunkReader;
    #[wasm_bindgen(constructor)]
    fn new(stream: &ReadableStream) -> ChunkReader;
    #[wasm_bindgen(method)]
    fn next(this: &ChunkReader) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn cancel(this: &ChunkReader);

    type BodyPipe;
    #[wasm_bindgen(constructor)]
    fn new() -> BodyPipe;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &BodyPipe) -> ReadableStream;
    #[wasm_bindgen(method)]
    fn send(this: &BodyPipe, bytes: Vec<u8>) -> i32;
    #[wasm_bindgen(method)]
    fn drained(this: &BodyPipe, room: u32) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn close(this: &BodyPipe);
}

/// A stream read whole.
pub enum Whole {
    Bytes(Vec<u8>),
    /// Longer than the cap (read on and discarded up to the drain cap).
    TooLarge,
    /// No chunk came within the stall time.
    Stalled,
}

/// Reads `stream` whole in JavaScript (one crossing into wasm, not one per chunk): at most
/// `cap` bytes kept, up to `drain_cap` read and discarded past it, and given up after
/// `stall_ms` without a chunk (0: no limit). Errs with the stream's error.
pub async fn read_whole(stream: &ReadableStream, cap: u64, drain_cap: u64, stall_ms: u64) -> Result<Whole, String> {
    let read = read_whole_js(stream, cap as f64, drain_cap as f64, stall_ms as f64);
    let value = JsFuture::from(read).await.map_err(|e| error_text(&e))?;
    Ok(match value.as_string().as_deref() {
        Some("too_large") => Whole::TooLarge,
        Some("stalled") => Whole::Stalled,
        _ => Whole::Bytes(js_sys::Uint8Array::new(&value).to_vec()),
    })
}

/// The writing end of a response body: bytes go to the client in order; closed on drop.
pub struct BodyWriter {
    pipe: BodyPipe,
}

/// A response body and the writer that fills it.
pub fn body_pipe() -> (ReadableStream, BodyWriter) {
    let pipe = BodyPipe::new();
    (pipe.readable(), BodyWriter { pipe })
}

/// What a write found.
pub enum Sent {
    /// Taken; this many chunks wait for the client.
    Queued(u32),
    /// The client has gone.
    Gone,
}

impl BodyWriter {
    pub fn send(&self, bytes: Vec<u8>) -> Sent {
        match self.pipe.send(bytes) {
            n if n < 0 => Sent::Gone,
            n => Sent::Queued(n as u32),
        }
    }

    /// Resolves true once at most `room` chunks wait, false if the client leaves first.
    pub async fn drained(&self, room: u32) -> bool {
        JsFuture::from(self.pipe.drained(room)).await.ok().and_then(|v| v.as_bool()).unwrap_or(false)
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        self.pipe.close();
    }
}
