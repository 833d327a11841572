//! The response the runtime sends, built from a handler's reply with workers-rs's
//! `ResponseBuilder`.

use worker::{Headers, ResponseBody};

/// What a response carries.
pub enum Payload {
    Empty,
    Bytes(Vec<u8>),
    Stream(web_sys::ReadableStream),
    /// A response fetched from a binding, passed on with its status, headers and body.
    Fetched(worker::Response),
}

/// Builds the runtime's response: `headers` are set over any the payload has.
pub fn build_response(status: u16, payload: Payload, headers: &[(&str, &str)]) -> web_sys::Response {
    let (status, out, body) = match payload {
        Payload::Empty => (status, Headers::new(), ResponseBody::Empty),
        Payload::Bytes(bytes) => (status, Headers::new(), ResponseBody::Body(bytes)),
        Payload::Stream(stream) => (status, Headers::new(), ResponseBody::Stream(stream)),
        Payload::Fetched(resp) => {
            // A fetched response's headers are immutable: copy them into a new set.
            let copied = web_sys::Headers::new_with_headers(&resp.headers().0).map(Headers).unwrap_or_default();
            (resp.status_code(), copied, resp.body().clone())
        }
    };
    for (name, value) in headers {
        let _ = out.set(name, value);
    }
    worker::Response::builder().with_status(status).with_headers(out).body(body).into()
}
