//! HTTP plumbing at the edge: the handler error type, JSON responses, and capped body reads.

use edgechat_core::{body, ApiError};
use futures_util::StreamExt;
use serde::Serialize;
use worker::{ByteStream, Response, ResponseBuilder};

pub const JSON: &str = "application/json; charset=utf-8";
/// An oversized chunked body is read and discarded up to this many times the cap.
const DRAIN_FACTOR: u64 = 16;

/// What a handler fails with: an API error shown as is, or a platform failure whose cause is
/// logged once by the pipeline and answered with a generic 500.
#[derive(Debug)]
pub enum AppError {
    Api(ApiError),
    /// An error already in OpenAI's shape (the `/v1/*` gateway).
    OpenAi(edgechat_core::gateway::OpenAiError),
    Platform {
        context: &'static str,
        cause: String,
    },
}

impl AppError {
    pub fn platform(context: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Platform { context, cause: cause.to_string() }
    }
}

impl From<edgechat_core::gateway::OpenAiError> for AppError {
    fn from(e: edgechat_core::gateway::OpenAiError) -> Self {
        Self::OpenAi(e)
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<edgechat_core::config::ConfigError> for AppError {
    fn from(e: edgechat_core::config::ConfigError) -> Self {
        Self::Api(e.into())
    }
}

pub type HandlerResult = Result<Response, AppError>;

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, value: &T) -> HandlerResult {
    let bytes = serde_json::to_vec(value).map_err(|e| AppError::platform("serialize", e))?;
    Ok(bytes_response(status, JSON, bytes))
}

pub fn bytes_response(status: u16, content_type: &str, bytes: Vec<u8>) -> Response {
    let resp = ResponseBuilder::new().with_status(status).fixed(bytes);
    let _ = resp.headers().set("content-type", content_type);
    resp
}

/// The one place an OpenAI-shaped error becomes a response.
pub fn openai_error_response(err: &edgechat_core::gateway::OpenAiError, extra: &[(&'static str, String)]) -> Response {
    let resp = bytes_response(err.status, JSON, err.body().into_bytes());
    for (name, value) in extra {
        let _ = resp.headers().set(name, value);
    }
    resp
}

/// The one place an [`ApiError`] becomes a response.
pub fn error_response(err: &ApiError, request_id: &str) -> Response {
    let resp = bytes_response(err.status, JSON, err.body(request_id).into_bytes());
    for (name, value) in &err.headers {
        let _ = resp.headers().set(name, value);
    }
    resp
}

pub fn header(req: &web_sys::Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Reads the body, stopping with 413 as soon as it passes `cap` (chunked bodies included).
pub async fn read_body(req: &web_sys::Request, cap: u64) -> Result<Vec<u8>, AppError> {
    body::check_declared_length(header(req, "content-length").as_deref(), cap)?;
    let mut stream = match req.body() {
        Some(s) => ByteStream::from(s),
        None => return Ok(Vec::new()),
    };
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::platform("read body", e))?;
        if (buf.len() + chunk.len()) as u64 > cap {
            // Drain (bounded) before answering: a body abandoned mid-upload makes clients
            // and the wrangler dev proxy see a reset instead of the 413.
            let mut drained = buf.len() as u64;
            while drained <= cap.saturating_mul(DRAIN_FACTOR) {
                match stream.next().await {
                    Some(Ok(more)) => drained += more.len() as u64,
                    _ => break,
                }
            }
            return Err(ApiError::payload_too_large(cap).into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Reads and decodes a JSON body (415/400/413/422 as documented).
pub async fn read_json<T: serde::de::DeserializeOwned>(req: &web_sys::Request, cap: u64) -> Result<T, AppError> {
    let content_type = header(req, "content-type");
    if !body::is_json_content_type(content_type.as_deref()) {
        return Err(ApiError::unsupported_media_type().into());
    }
    let bytes = read_body(req, cap).await?;
    Ok(body::parse_json(content_type.as_deref(), &bytes)?)
}
