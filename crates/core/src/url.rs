//! The parts of a request URL the API reads (path, query string, origin), taken from the runtime's
//! already-normalized URL string without a URL parser (the `url` crate would bring its
//! Unicode tables into the wasm).

/// The query string (without `?` and any fragment), or "".
pub fn query(url: &str) -> &str {
    let without_fragment = url.split('#').next().unwrap_or("");
    without_fragment.split_once('?').map_or("", |(_, q)| q)
}

/// The path (without query and fragment), "/" when empty.
pub fn path(url: &str) -> &str {
    let rest = &url[origin(url).len()..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    if end == 0 {
        "/"
    } else {
        &rest[..end]
    }
}

/// `scheme://host[:port]`, or "" when `url` has no scheme.
pub fn origin(url: &str) -> &str {
    let Some(scheme_end) = url.find("://") else { return "" };
    let rest = &url[scheme_end + 3..];
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &url[..scheme_end + 3 + host_len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_excludes_the_fragment() {
        assert_eq!(query("http://h/p?a=1&b=2#frag"), "a=1&b=2");
        assert_eq!(query("http://h/p"), "");
        assert_eq!(query("http://h/p?"), "");
        assert_eq!(query("http://h/p#x?y"), "");
    }

    #[test]
    fn the_path_excludes_origin_query_and_fragment() {
        assert_eq!(path("http://127.0.0.1:8787/api/v1/x?y=1"), "/api/v1/x");
        assert_eq!(path("https://chat.example.com"), "/");
        assert_eq!(path("https://chat.example.com?q"), "/");
        assert_eq!(path("https://h/a%20b/c#frag"), "/a%20b/c");
        assert_eq!(path("https://h/"), "/");
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        assert_eq!(origin("http://127.0.0.1:8787/api/v1/x?y=1"), "http://127.0.0.1:8787");
        assert_eq!(origin("https://chat.example.com"), "https://chat.example.com");
        assert_eq!(origin("https://chat.example.com?q"), "https://chat.example.com");
        assert_eq!(origin("no-scheme"), "");
    }
}
