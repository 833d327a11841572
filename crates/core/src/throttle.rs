//! Login brute-force protection: the keys attempts are counted under and the lockout
//! arithmetic. The counting itself is one atomic D1 upsert at the edge.

use sha2::{Digest, Sha256};

/// Limits on failed logins inside one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_email: u32,
    pub per_ip: u32,
    pub window_seconds: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { per_email: 5, per_ip: 20, window_seconds: 900 }
    }
}

/// A login-attempt counter after one more attempt was counted.
#[derive(Debug, serde::Deserialize)]
pub struct Counter {
    pub attempt_count: u64,
    pub window_started_at: u64,
}

/// Counter key for an email: hashed, so the counter table holds no addresses.
pub fn email_key(normalized_email: &str) -> String {
    format!("email:{}", crate::request_id::hex(&Sha256::digest(normalized_email.as_bytes())))
}

/// Counter key for a client address.
pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// The start of the window that `now_ms` falls in when counting restarts after expiry:
/// a counter whose window started before this is reset.
pub fn window_cutoff(now_ms: u64, limits: &LoginLimits) -> u64 {
    now_ms.saturating_sub(limits.window_seconds * 1000)
}

/// Seconds until a window that started at `window_started_at` ends (at least 1).
pub fn retry_after_seconds(window_started_at: u64, now_ms: u64, limits: &LoginLimits) -> u64 {
    let ends = window_started_at + limits.window_seconds * 1000;
    (ends.saturating_sub(now_ms)).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keys_hide_the_address() {
        let k = email_key("ada@example.com");
        assert!(k.starts_with("email:"));
        assert!(!k.contains("ada"));
        assert_eq!(k, email_key("ada@example.com"));
    }

    #[test]
    fn retry_after_counts_down_to_the_window_end() {
        let l = LoginLimits { per_email: 5, per_ip: 20, window_seconds: 900 };
        assert_eq!(retry_after_seconds(1_000_000, 1_000_000, &l), 900);
        assert_eq!(retry_after_seconds(1_000_000, 1_000_000 + 899_500, &l), 1);
        assert_eq!(retry_after_seconds(1_000_000, 1_000_000 + 901_000, &l), 1);
        assert_eq!(window_cutoff(1_000_000, &l), 100_000);
    }
}
