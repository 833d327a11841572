//! The one error type of the HTTP API and the one JSON body every error becomes.

/// An error a handler returns; the edge turns it into a response with [`ApiError::body`].
///
/// `message` is shown to the client. 5xx constructors use fixed messages so internals never
/// leak; the cause is logged once by the edge, not carried here.
///
/// Boxed: a `Result` carrying it is one pointer wider than its value at most, so each `?`
/// (and each async state machine it passes through) moves a pointer, not the error. Its
/// fields are read through [`ErrorParts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(Box<ErrorParts>);

/// What an [`ApiError`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorParts {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Extra response headers (`Allow` on 405, `Retry-After` on 429/503).
    pub headers: Vec<(&'static str, String)>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorParts;

    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts { status, code, message: message.into(), headers: Vec::new() }))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(400, "invalid_json", format!("request body is not valid JSON: {detail}"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }

    pub fn route_not_found() -> Self {
        Self::new(404, "route_not_found", "no route matches this path")
    }

    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        Self::new(405, "method_not_allowed", format!("method not allowed here; allowed: {allow}"))
            .with_header("allow", allow)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn payload_too_large(limit_bytes: u64) -> Self {
        Self::new(413, "payload_too_large", format!("request body exceeds {limit_bytes} bytes"))
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(415, "unsupported_media_type", "request body must be application/json")
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(422, "validation_failed", message)
    }

    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        Self::new(429, "rate_limited", format!("too many requests; retry in {retry_after_seconds} s"))
            .with_header("retry-after", retry_after_seconds.to_string())
    }

    /// A 500 whose message says nothing about the cause.
    pub fn internal() -> Self {
        Self::new(500, "internal_error", "internal error")
    }

    /// A 500 for a missing or invalid setting; naming the variable tells the operator what to
    /// fix without revealing any value.
    pub fn misconfigured(err: &crate::config::ConfigError) -> Self {
        Self::new(500, "misconfigured", format!("server misconfigured: {err}"))
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }

    /// The JSON body of this error, tagged with the request id.
    pub fn body(&self, request_id: &str) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: Detail<'a>,
        }
        #[derive(serde::Serialize)]
        struct Detail<'a> {
            code: &'a str,
            message: &'a str,
            request_id: &'a str,
        }
        let body = Body { error: Detail { code: self.code, message: &self.message, request_id } };
        // Only strings: serializing cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }

    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
}

impl From<crate::config::ConfigError> for ApiError {
    fn from(err: crate::config::ConfigError) -> Self {
        Self::misconfigured(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn body_has_the_documented_shape() {
        let body: Value = serde_json::from_str(&ApiError::not_found("conversation").body("rid-1")).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "conversation not found");
        assert_eq!(body["error"]["request_id"], "rid-1");
        assert_eq!(body.as_object().unwrap().len(), 1);
        assert_eq!(body["error"].as_object().unwrap().len(), 3);
    }

    #[test]
    fn method_not_allowed_lists_the_allowed_methods_in_allow() {
        let err = ApiError::method_not_allowed(&["GET", "POST"]);
        assert_eq!(err.status, 405);
        assert_eq!(err.headers, vec![("allow", "GET, POST".to_string())]);
    }

    #[test]
    fn internal_errors_carry_no_detail() {
        let err = ApiError::internal();
        assert_eq!(err.message, "internal error");
        assert!(err.is_server_error());
    }

    #[test]
    fn messages_with_quotes_stay_valid_json() {
        let err = ApiError::validation("field \"title\" is \\ bad\n");
        let body: Value = serde_json::from_str(&err.body("r")).unwrap();
        assert_eq!(body["error"]["message"], "field \"title\" is \\ bad\n");
    }
}
