//! Security headers on every response, and the Content-Security-Policy of the chat page.

/// The page loads only its own scripts, styles and API; nothing may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Headers every response carries.
pub const HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", CONTENT_SECURITY_POLICY),
];

/// True for paths the static page may answer: not the API, the gateway or health.
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/v1/") || path == "/v1" || path.starts_with("/health"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_forbids_inline_script_and_framing() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert!(HEADERS.iter().any(|(n, v)| *n == "x-content-type-options" && *v == "nosniff"));
    }

    #[test]
    fn api_paths_are_never_page_paths() {
        assert!(is_page_path("/"));
        assert!(is_page_path("/app.js"));
        assert!(!is_page_path("/api/v1/anything"));
        assert!(!is_page_path("/v1/models"));
        assert!(!is_page_path("/health/ready"));
    }
}
