//! CORS: which origins get a grant, and the headers of preflight and actual responses.

use crate::ApiError;

/// Methods a cross-origin caller may use.
pub const ALLOWED_METHODS: &str = "GET, POST, PATCH, DELETE, OPTIONS";
/// Request headers a cross-origin caller may send.
// `mcp-protocol-version`: MCP clients in a browser send it on every request after `initialize`.
// The official OpenAI and Anthropic SDKs, used from a page, send their own headers (versions,
// betas, organization, and `x-stainless-*` telemetry); refusing one fails the whole preflight.
const ALLOWED_HEADERS: &[&str] = &[
    "accept",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "anthropic-version",
    "authorization",
    "cache-control",
    "content-type",
    "idempotency-key",
    "last-event-id",
    "mcp-protocol-version",
    "openai-organization",
    "openai-project",
    "x-api-key",
    "x-csrf-token",
    "x-request-id",
];
/// Request header name prefixes a cross-origin caller may send (the SDKs' telemetry).
const ALLOWED_HEADER_PREFIXES: &[&str] = &["x-stainless-"];

fn is_allowed_header(name: &str) -> bool {
    ALLOWED_HEADERS.contains(&name)
        || ALLOWED_HEADER_PREFIXES.iter().any(|p| name.starts_with(p) && name.len() > p.len())
}
/// Response headers a cross-origin caller may read.
pub const EXPOSED_HEADERS: &str =
    "x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-edgechat-cache";
const MAX_AGE_SECONDS: &str = "600";

/// Which origins may call the API from a browser (`CORS_ORIGINS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsPolicy {
    /// Same-origin only: no grants (the default).
    #[default]
    None,
    /// `*`: any origin, never with credentials.
    Any,
    /// An explicit list: the matching origin is echoed, with credentials.
    List(Vec<String>),
}

pub type Headers = Vec<(&'static str, String)>;

impl CorsPolicy {
    /// Parses `*` or a comma-separated list of `scheme://host[:port]` origins.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !is_origin(origin) {
                return Err("must be * or a comma-separated list of origins like https://app.example.com".to_string());
            }
            list.push(origin.trim_end_matches('/').to_ascii_lowercase());
        }
        Ok(Self::List(list))
    }

    fn allows(&self, origin: &str) -> Option<bool> {
        match self {
            Self::None => None,
            Self::Any => Some(false),
            Self::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)).then_some(true),
        }
    }

    /// True when browsers at `origin` may call the API.
    pub fn grants(&self, origin: &str) -> bool {
        self.allows(origin).is_some()
    }

    /// Headers for an actual (non-preflight) response to a request from `origin`.
    pub fn response_headers(&self, origin: Option<&str>) -> Headers {
        let mut headers = Headers::new();
        if matches!(self, Self::List(_)) {
            headers.push(("vary", "Origin".into()));
        }
        let Some(origin) = origin else { return headers };
        match self.allows(origin) {
            Some(true) => {
                headers.push(("access-control-allow-origin", origin.to_string()));
                headers.push(("access-control-allow-credentials", "true".into()));
                headers.push(("access-control-expose-headers", EXPOSED_HEADERS.into()));
            }
            Some(false) => {
                headers.push(("access-control-allow-origin", "*".into()));
                headers.push(("access-control-expose-headers", EXPOSED_HEADERS.into()));
            }
            None => {}
        }
        headers
    }

    /// Answers a preflight: the grant headers, or 403 when the origin, method or a header is
    /// not allowed.
    pub fn preflight(&self, origin: &str, method: &str, request_headers: Option<&str>) -> Result<Headers, ApiError> {
        let denied = |what: String| ApiError::new(403, "cors_denied", what);
        if self.allows(origin).is_none() {
            return Err(denied("origin is not allowed".into()));
        }
        if !ALLOWED_METHODS.split(", ").any(|m| m.eq_ignore_ascii_case(method.trim())) {
            return Err(denied(format!("method is not allowed; allowed: {ALLOWED_METHODS}")));
        }
        let requested: Vec<String> = request_headers
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(bad) = requested.iter().find(|h| !is_allowed_header(h)) {
            return Err(denied(format!("request header {bad} is not allowed")));
        }
        let mut headers = self.response_headers(Some(origin));
        headers.retain(|(name, _)| *name != "access-control-expose-headers");
        headers.push(("access-control-allow-methods", ALLOWED_METHODS.into()));
        if !requested.is_empty() {
            headers.push(("access-control-allow-headers", requested.join(", ")));
        }
        headers.push(("access-control-max-age", MAX_AGE_SECONDS.into()));
        Ok(headers)
    }
}

fn is_origin(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(host) => {
            let host = host.trim_end_matches('/');
            !host.is_empty()
                && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_listed_origin_is_echoed_with_credentials() {
        let policy = CorsPolicy::parse("https://app.example.com, http://localhost:5173").unwrap();
        let h = policy.response_headers(Some("http://localhost:5173"));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("http://localhost:5173"));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(&h, "vary"), Some("Origin"));
    }

    #[test]
    fn an_unlisted_origin_gets_no_grant() {
        let policy = CorsPolicy::parse("https://app.example.com").unwrap();
        let h = policy.response_headers(Some("https://evil.example"));
        assert_eq!(get(&h, "access-control-allow-origin"), None);
        assert!(policy.preflight("https://evil.example", "POST", None).is_err());
    }

    #[test]
    fn a_wildcard_never_grants_credentials() {
        let h = CorsPolicy::Any.response_headers(Some("https://any.example"));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&h, "access-control-allow-credentials"), None);
    }

    #[test]
    fn the_default_policy_grants_nothing() {
        assert!(CorsPolicy::default().response_headers(Some("https://a.example")).is_empty());
        assert_eq!(CorsPolicy::parse("  ").unwrap(), CorsPolicy::None);
    }

    #[test]
    fn preflight_echoes_allowed_headers_and_lists_methods() {
        let policy = CorsPolicy::parse("https://app.example.com").unwrap();
        let h = policy.preflight("https://app.example.com", "PATCH", Some("Content-Type, Authorization")).unwrap();
        assert_eq!(get(&h, "access-control-allow-methods"), Some(ALLOWED_METHODS));
        assert_eq!(get(&h, "access-control-allow-headers"), Some("content-type, authorization"));
        assert_eq!(get(&h, "access-control-max-age"), Some("600"));
    }

    #[test]
    fn preflight_lets_the_official_sdks_and_resuming_clients_send_their_headers() {
        let policy = CorsPolicy::parse("https://app.example.com").unwrap();
        let sdk = "authorization, content-type, x-stainless-lang, x-stainless-package-version, x-stainless-os, \
                   x-stainless-arch, x-stainless-runtime, x-stainless-runtime-version, x-stainless-retry-count, \
                   x-stainless-timeout, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, \
                   x-api-key, openai-organization, openai-project, idempotency-key, last-event-id";
        let h = policy.preflight("https://app.example.com", "POST", Some(sdk)).unwrap();
        let allowed = h.iter().find(|(n, _)| *n == "access-control-allow-headers").unwrap();
        assert!(allowed.1.contains("x-stainless-retry-count") && allowed.1.contains("idempotency-key"));
        // A bare prefix or an unrelated header is still refused.
        assert!(policy.preflight("https://app.example.com", "POST", Some("x-stainless-")).is_err());
        assert!(policy.preflight("https://app.example.com", "POST", Some("x-stainlessly")).is_err());
        assert!(policy.preflight("https://evil.example", "POST", Some("x-stainless-os")).is_err());
    }

    #[test]
    fn preflight_refuses_unknown_methods_and_headers() {
        let policy = CorsPolicy::parse("https://app.example.com").unwrap();
        assert_eq!(policy.preflight("https://app.example.com", "PUT", None).unwrap_err().status, 403);
        assert!(policy.preflight("https://app.example.com", "GET", Some("x-admin")).is_err());
    }

    #[test]
    fn preflight_lets_browser_mcp_clients_send_their_protocol_version() {
        let policy = CorsPolicy::parse("https://app.example.com").unwrap();
        let h =
            policy.preflight("https://app.example.com", "POST", Some("mcp-protocol-version, content-type")).unwrap();
        assert_eq!(get(&h, "access-control-allow-headers"), Some("mcp-protocol-version, content-type"));
    }

    #[test]
    fn origins_must_be_scheme_and_host() {
        assert!(CorsPolicy::parse("app.example.com").is_err());
        assert!(CorsPolicy::parse("https://a.example/path?q").is_err());
        assert_eq!(
            CorsPolicy::parse("https://A.example/").unwrap(),
            CorsPolicy::List(vec!["https://a.example".into()])
        );
    }
}
