//! The refresh-token cookie for browsers: `HttpOnly; Secure; SameSite=Strict`, scoped to the
//! auth routes, so page scripts never see it and other sites never send it.

pub const REFRESH_COOKIE: &str = "edgechat_refresh";
/// Only the auth routes receive the cookie.
pub const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

/// The value of cookie `name` in a `Cookie` request header.
pub fn get<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// `Set-Cookie` carrying a refresh token for `max_age_seconds`.
pub fn set_refresh(token: &str, max_age_seconds: u64) -> String {
    format!("{REFRESH_COOKIE}={token}; Path={REFRESH_COOKIE_PATH}; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Strict")
}

/// `Set-Cookie` that removes the refresh cookie.
pub fn clear_refresh() -> String {
    format!("{REFRESH_COOKIE}=; Path={REFRESH_COOKIE_PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        assert_eq!(get("a=1; edgechat_refresh=ec_rt_x; b=2", REFRESH_COOKIE), Some("ec_rt_x"));
        assert_eq!(get("a=1", REFRESH_COOKIE), None);
        assert_eq!(get("xedgechat_refresh=1", REFRESH_COOKIE), None);
    }

    #[test]
    fn the_cookie_is_httponly_secure_strict_and_scoped() {
        let c = set_refresh("tok", 60);
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age=60"] {
            assert!(c.contains(part), "{part}");
        }
        assert!(clear_refresh().contains("Max-Age=0"));
    }
}
