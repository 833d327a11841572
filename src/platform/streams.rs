//! Byte streams between Rust and the runtime: a JavaScript `ReadableStream` read as chunks
//! of bytes, and a Rust channel of bytes offered as a `ReadableStream` (a response body).

use super::error_text;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::JsValue;
use web_sys::ReadableStream;

/// A JavaScript byte stream read from Rust.
pub struct ByteStream {
    inner: Pin<Box<wasm_streams::readable::IntoStream<'static>>>,
}

impl ByteStream {
    pub fn new(raw: ReadableStream) -> Self {
        Self { inner: Box::pin(wasm_streams::ReadableStream::from_raw(raw).into_stream()) }
    }
}

impl Stream for ByteStream {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx).map(|item| {
            item.map(|chunk| match chunk {
                Ok(value) => Ok(js_sys::Uint8Array::new(&value).to_vec()),
                Err(e) => Err(error_text(&e)),
            })
        })
    }
}

/// A `ReadableStream` that yields each chunk `chunks` produces, and ends when it does.
pub fn readable(chunks: impl Stream<Item = Vec<u8>> + 'static) -> ReadableStream {
    let values = chunks.map(|bytes| Ok::<JsValue, JsValue>(js_sys::Uint8Array::from(bytes.as_slice()).into()));
    wasm_streams::ReadableStream::from_stream(values).into_raw()
}
