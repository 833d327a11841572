//! The runtime's HTTP objects: outbound `fetch` with an abort handle, the assets and Workers
//! AI bindings, and building the response the runtime sends.

use super::error_text;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, Request, Response};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(request: &Request) -> Result<js_sys::Promise, JsValue>;

    /// A service binding (`ASSETS`).
    pub type Fetcher;
    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn fetch_promise(this: &Fetcher, request: &Request) -> Result<js_sys::Promise, JsValue>;

    /// The Workers AI binding.
    pub type Ai;
    #[wasm_bindgen(method, catch, js_name = run)]
    fn run_promise(this: &Ai, model: &str, input: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    fn respond(
        status: u16,
        bytes: Option<Vec<u8>>,
        body: Option<JsValue>,
        fetched: Option<Response>,
        head: &str,
    ) -> Response;
}

async fn response_of(promise: Result<js_sys::Promise, JsValue>) -> Result<Response, String> {
    let value = JsFuture::from(promise.map_err(|e| error_text(&e))?).await.map_err(|e| error_text(&e))?;
    value.dyn_into::<Response>().map_err(|_| "not a Response".to_string())
}

/// Sends `request` out (an abort signal in its init cancels it).
pub async fn fetch(request: &Request) -> Result<Response, String> {
    response_of(global_fetch(request)).await
}

impl Fetcher {
    pub async fn fetch(&self, request: &Request) -> Result<Response, String> {
        response_of(self.fetch_promise(request)).await
    }
}

impl Ai {
    /// Runs `model` on `input` (JSON text) and returns its byte stream.
    pub async fn run_stream(&self, model: &str, input: &str) -> Result<ReadableStream, String> {
        let input = js_sys::JSON::parse(input).map_err(|e| error_text(&e))?;
        let promise = self.run_promise(model, &input).map_err(|e| error_text(&e))?;
        let output = JsFuture::from(promise).await.map_err(|e| error_text(&e))?;
        output.dyn_into::<ReadableStream>().map_err(|_| "the model did not return a stream".to_string())
    }
}

/// What a response carries.
pub enum Payload {
    Empty,
    Bytes(Vec<u8>),
    /// Text that is already a JavaScript string (a cached body): sent without entering the wasm.
    Text(js_sys::JsString),
    Stream(ReadableStream),
    /// A response fetched from a binding, passed on with its status, headers and body.
    Fetched(Response),
}

/// Builds the runtime's response in one call: `headers` are set over any the payload has.
pub fn build_response(status: u16, payload: Payload, headers: &[(&str, &str)]) -> Response {
    let mut head = String::new();
    for (name, value) in headers {
        head.push_str(name);
        head.push('\n');
        head.push_str(value);
        head.push('\n');
    }
    match payload {
        Payload::Empty => respond(status, None, None, None, &head),
        Payload::Bytes(bytes) => respond(status, Some(bytes), None, None, &head),
        Payload::Text(text) => respond(status, None, Some(text.into()), None, &head),
        Payload::Stream(stream) => respond(status, None, Some(stream.into()), None, &head),
        Payload::Fetched(resp) => respond(status, None, None, Some(resp), &head),
    }
}
