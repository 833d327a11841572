//! The incoming request as the app reads it: method, URL, the headers it uses (each read from
//! the runtime once, on first use) and its abort signal.

use std::cell::OnceCell;
use wasm_bindgen::{JsCast, JsValue};

/// Every request header the app reads: a closed set, so none can be asked for by a name that
/// is not listed here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Header {
    RequestId,
    Origin,
    ContentLength,
    ContentType,
    Authorization,
    Accept,
    CacheControl,
    Cookie,
    ConnectingIp,
    StripeSignature,
    PreflightMethod,
    PreflightHeaders,
    McpProtocolVersion,
    LastEventId,
    IdempotencyKey,
    /// An API key the Anthropic way, on `/v1/*`.
    ApiKey,
}

const COUNT: usize = Header::ApiKey as usize + 1;

impl Header {
    pub fn name(self) -> &'static str {
        match self {
            Self::RequestId => "x-request-id",
            Self::Origin => "origin",
            Self::ContentLength => "content-length",
            Self::ContentType => "content-type",
            Self::Authorization => "authorization",
            Self::Accept => "accept",
            Self::CacheControl => "cache-control",
            Self::Cookie => "cookie",
            Self::ConnectingIp => "cf-connecting-ip",
            Self::StripeSignature => "stripe-signature",
            Self::PreflightMethod => "access-control-request-method",
            Self::PreflightHeaders => "access-control-request-headers",
            Self::McpProtocolVersion => "mcp-protocol-version",
            Self::LastEventId => "last-event-id",
            Self::IdempotencyKey => "idempotency-key",
            Self::ApiKey => "x-api-key",
        }
    }
}

pub struct RequestHead {
    pub method: String,
    pub url: String,
    headers: web_sys::Headers,
    values: [OnceCell<Option<String>>; COUNT],
}

impl RequestHead {
    pub fn read(request: &web_sys::Request) -> Self {
        Self {
            method: request.method(),
            url: request.url(),
            headers: request.headers(),
            values: std::array::from_fn(|_| OnceCell::new()),
        }
    }

    /// The header's value, if sent.
    pub fn header(&self, header: Header) -> Option<&str> {
        self.values[header as usize].get_or_init(|| self.headers.get(header.name()).ok().flatten()).as_deref()
    }
}

/// The request's abort signal, which fires when the client goes away (with the
/// `enable_request_signal` compatibility flag; without it, departures are noticed by the
/// response stream alone). workers-rs has no `Request::signal`: read from the runtime's object,
/// where a runtime without it gives `None`.
pub fn abort_signal(request: &web_sys::Request) -> Option<web_sys::AbortSignal> {
    js_sys::Reflect::get(request, &JsValue::from_str("signal")).ok()?.dyn_into().ok()
}
