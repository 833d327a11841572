//! HTTP plumbing at the edge: the handler error type, JSON responses, and capped body reads.

use crate::app::Ctx;
use crate::runtime::request::Header;
use crate::runtime::response::Payload;
use crate::runtime::streams::{read_whole, Whole};
use edgechat_core::serde::{de::DeserializeOwned, Serialize};
use edgechat_core::views::Page;
use edgechat_core::{body, serde_json, ApiError};

pub const JSON: &str = "application/json; charset=utf-8";
/// An oversized chunked body is read and discarded up to this many times the cap.
const DRAIN_FACTOR: u64 = 16;

/// What a handler fails with (boxed: a `Result` carrying it stays one pointer wide, so each
/// `?` moves a pointer, not the error).
#[derive(Debug)]
pub struct AppError(Box<Failure>);

/// An API error shown as is, or a platform failure whose cause is logged once by the pipeline
/// and answered with a generic 500.
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    /// An error already in OpenAI's shape (the `/v1/*` gateway; Anthropic's on `/v1/messages*`).
    OpenAi(edgechat_core::gateway::OpenAiError),
    Platform {
        context: &'static str,
        cause: String,
    },
}

impl AppError {
    pub fn platform(context: &'static str, cause: impl std::fmt::Display) -> Self {
        Self(Box::new(Failure::Platform { context, cause: cause.to_string() }))
    }

    pub fn failure(&self) -> &Failure {
        &self.0
    }

    /// The API error's code, when this is one.
    pub fn api_code(&self) -> Option<&'static str> {
        match self.failure() {
            Failure::Api(e) => Some(e.code),
            _ => None,
        }
    }

    pub fn into_failure(self) -> Failure {
        *self.0
    }

    /// The error with `f` applied when it is in OpenAI's shape.
    pub fn map_openai(
        self,
        f: impl FnOnce(edgechat_core::gateway::OpenAiError) -> edgechat_core::gateway::OpenAiError,
    ) -> Self {
        match *self.0 {
            Failure::OpenAi(e) => f(e).into(),
            other => Self(Box::new(other)),
        }
    }
}

impl From<edgechat_core::gateway::OpenAiError> for AppError {
    fn from(e: edgechat_core::gateway::OpenAiError) -> Self {
        Self(Box::new(Failure::OpenAi(e)))
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        Self(Box::new(Failure::Api(e)))
    }
}

impl From<edgechat_core::config::ConfigError> for AppError {
    fn from(e: edgechat_core::config::ConfigError) -> Self {
        ApiError::from(e).into()
    }
}

/// A handler's answer, as plain data: the pipeline adds its headers and makes the runtime's
/// response from it in one call.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload,
}

impl Reply {
    /// A response without a body (204 and the like).
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), payload: Payload::Empty }
    }

    pub fn bytes(status: u16, content_type: &str, bytes: Vec<u8>) -> Self {
        Self { status, headers: vec![("content-type", content_type.to_string())], payload: Payload::Bytes(bytes) }
    }

    /// A Server-Sent Events stream.
    pub fn event_stream(body: web_sys::ReadableStream) -> Self {
        Self::sse(Payload::Stream(body))
    }

    /// A Server-Sent Events stream another party (a Durable Object) answered with.
    pub fn fetched_event_stream(resp: worker::Response) -> Self {
        Self::sse(Payload::Fetched(resp))
    }

    fn sse(payload: Payload) -> Self {
        let headers = vec![
            ("content-type", "text/event-stream; charset=utf-8".to_string()),
            ("cache-control", "no-cache, no-transform".to_string()),
        ];
        Self { status: 200, headers, payload }
    }

    /// Sets a header (over an earlier one of the same name).
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }
}

pub type HandlerResult = Result<Reply, AppError>;

/// A JSON response with `status`: `value` rendered by serde_json.
pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> HandlerResult {
    Ok(json_text(status, to_json(value)?))
}

/// `value` as JSON text (for a body that is also cached or sent as an event).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|e| AppError::platform("render json", e))
}

/// A response with `status` whose body is JSON text already written.
pub fn json_text(status: u16, text: String) -> Reply {
    Reply::bytes(status, JSON, text.into_bytes())
}

/// A page of a list: `{"data": [...], "next_cursor": ...}`.
pub fn list_page<T: Serialize>(status: u16, data: &[T], next_cursor: Option<String>) -> HandlerResult {
    json(status, &Page::new(data, next_cursor))
}

/// The one place an OpenAI-shaped error becomes a response.
pub fn openai_error_response(err: &edgechat_core::gateway::OpenAiError, extra: &[(&'static str, String)]) -> Reply {
    let mut reply = Reply::bytes(err.status, JSON, err.body().into_bytes());
    reply.headers.extend(extra.iter().cloned());
    reply
}

/// The one place an error on `/v1/messages*` becomes a response: Anthropic's shape
/// (`{"type": "error", "error": {"type", "message"}}`) with the same status.
pub fn anthropic_error_response(err: &edgechat_core::gateway::OpenAiError, extra: &[(&'static str, String)]) -> Reply {
    use edgechat_core::answer::{messages_error_json, messages_error_type};
    let body = messages_error_json(messages_error_type(err.status), &err.message);
    let mut reply = Reply::bytes(err.status, JSON, body.into_bytes());
    reply.headers.extend(extra.iter().cloned());
    reply
}

/// The one place an [`ApiError`] becomes a response.
pub fn error_response(err: &ApiError, request_id: &str) -> Reply {
    let mut reply = Reply::bytes(err.status, JSON, err.body(request_id).into_bytes());
    reply.headers.extend(err.headers.iter().cloned());
    reply
}

/// Reads the body, stopping with 413 as soon as it passes the configured cap (chunked bodies
/// included).
pub async fn read_body(cx: &Ctx<'_>) -> Result<Vec<u8>, AppError> {
    let cap = cx.config.max_body_bytes;
    body::check_declared_length(cx.header(Header::ContentLength), cap)?;
    let Some(stream) = cx.req.body() else { return Ok(Vec::new()) };
    // Past the cap the body is drained (bounded) before answering: a body abandoned
    // mid-upload makes clients and the wrangler dev proxy see a reset instead of the 413.
    match read_whole(&stream, cap, cap.saturating_mul(DRAIN_FACTOR), 0).await {
        Ok(Whole::Bytes(bytes)) => Ok(bytes),
        Ok(_) => Err(ApiError::payload_too_large(cap).into()),
        Err(e) => Err(AppError::platform("read body", e)),
    }
}

/// Reads and decodes a JSON body (415/400/413/422 as documented).
pub async fn read_json<T: DeserializeOwned>(cx: &Ctx<'_>) -> Result<T, AppError> {
    read_json_bytes(cx).await.map(|(value, _)| value)
}

/// [`read_json`], with the body's bytes as sent.
pub async fn read_json_bytes<T: DeserializeOwned>(cx: &Ctx<'_>) -> Result<(T, Vec<u8>), AppError> {
    let content_type = cx.header(Header::ContentType);
    if !body::is_json_content_type(content_type) {
        return Err(ApiError::unsupported_media_type().into());
    }
    let bytes = read_body(cx).await?;
    let value = body::parse_json(content_type, &bytes)?;
    Ok((value, bytes))
}
