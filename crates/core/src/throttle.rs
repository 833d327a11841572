//! Login and registration throttling: the keys attempts are counted under and the decisions
//! over the counts. Failures are counted strictly per (email, address) and per address; per
//! email, across addresses, they only add growing waits for addresses that have themselves
//! failed, so a correct password from an address that has not failed always gets through.
//! The counting itself is atomic D1 upserts at the edge.

use sha2::{Digest, Sha256};

/// Limits on failed logins; every count restarts `window_seconds` after its first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures for one email from one address; beyond, that address is refused for that
    /// email (429), whatever the password, until the window ends.
    pub per_email_ip: u32,
    /// Failures from one address, whatever the email; beyond, the address is refused.
    pub per_ip: u32,
    /// Failures for one email from any address before waits start: each further failure
    /// doubles the wait imposed on the addresses that have failed for it.
    pub per_email: u32,
    /// The first of those waits.
    pub email_delay_seconds: u64,
    pub window_seconds: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { per_email_ip: 5, per_ip: 20, per_email: 5, email_delay_seconds: 1, window_seconds: 900 }
    }
}

/// Limits on registrations from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterLimits {
    pub per_ip: u32,
    pub window_seconds: u64,
}

impl Default for RegisterLimits {
    fn default() -> Self {
        Self { per_ip: 10, window_seconds: 3600 }
    }
}

/// An attempt counter after one more attempt was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Counter {
    pub attempt_count: u64,
    pub window_started_at: u64,
}

/// An email's failed logins from every address, as stored (before this attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct EmailFailures {
    pub attempt_count: u64,
    pub window_started_at: u64,
    pub last_failure_at: Option<u64>,
}

/// The counts one login attempt is judged on: its address's and its (email, address)
/// counters with this attempt counted, and the email's failures so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginCounts {
    pub ip: Counter,
    pub email_ip: Counter,
    pub email: Option<EmailFailures>,
}

/// Why an attempt is refused before its password is checked (429), and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address, or the address for this email, used up the window's failures.
    Locked { retry_after_seconds: u64 },
    /// This address has failed for this email, which is being tried from many addresses:
    /// it waits; its attempt is not held against it.
    Wait { retry_after_seconds: u64 },
}

impl Refusal {
    pub fn retry_after_seconds(self) -> u64 {
        match self {
            Self::Locked { retry_after_seconds } | Self::Wait { retry_after_seconds } => retry_after_seconds,
        }
    }
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    crate::request_id::hex(&hash.finalize())
}

/// Counter key for an email: hashed, so the counter table holds no addresses.
pub fn email_key(normalized_email: &str) -> String {
    format!("email:{}", hex_sha256(&[normalized_email.as_bytes()]))
}

/// Counter key for an email from one client address (hashed like the email's).
pub fn email_ip_key(normalized_email: &str, ip: &str) -> String {
    format!("email_ip:{}", hex_sha256(&[normalized_email.as_bytes(), b"\n", ip.as_bytes()]))
}

/// Counter key for a client address's logins.
pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Counter key for a client address's registrations.
pub fn register_key(ip: &str) -> String {
    format!("register:{ip}")
}

/// The instant before which a counter's window has ended: such a counter restarts at 1.
pub fn window_cutoff(now_ms: u64, window_seconds: u64) -> u64 {
    now_ms.saturating_sub(window_seconds.saturating_mul(1000))
}

/// Seconds until a window that started at `window_started_at` ends (at least 1).
pub fn retry_after_seconds(window_started_at: u64, now_ms: u64, window_seconds: u64) -> u64 {
    let ends = window_started_at.saturating_add(window_seconds.saturating_mul(1000));
    ends.saturating_sub(now_ms).div_ceil(1000).max(1)
}

/// The wait, in milliseconds, after an email's `failures`-th failure: none up to
/// `per_email`, then `email_delay_seconds` doubling with each failure, at most the window.
pub fn email_wait_ms(failures: u64, limits: &LoginLimits) -> u64 {
    let Some(beyond) = failures.checked_sub(u64::from(limits.per_email)).filter(|b| *b > 0) else {
        return 0;
    };
    let doublings = u32::try_from(beyond - 1).unwrap_or(u32::MAX).min(40);
    limits
        .email_delay_seconds
        .saturating_mul(1000)
        .saturating_mul(1 << doublings)
        .min(limits.window_seconds.saturating_mul(1000))
}

/// Judges a login attempt before its password is checked. The address's cap and the strict
/// (email, address) count refuse whatever the password; the email's wait applies only to an
/// address with an earlier attempt for this email still counted (one that failed).
pub fn judge_login(counts: &LoginCounts, now_ms: u64, limits: &LoginLimits) -> Result<(), Refusal> {
    let window = limits.window_seconds;
    for (counter, limit) in [(counts.ip, limits.per_ip), (counts.email_ip, limits.per_email_ip)] {
        if counter.attempt_count > u64::from(limit) {
            let retry_after_seconds = retry_after_seconds(counter.window_started_at, now_ms, window);
            return Err(Refusal::Locked { retry_after_seconds });
        }
    }
    let has_failed_here = counts.email_ip.attempt_count > 1;
    let email = counts.email.filter(|e| e.window_started_at >= window_cutoff(now_ms, window));
    if let (true, Some(email)) = (has_failed_here, email) {
        let last = email.last_failure_at.unwrap_or(email.window_started_at);
        let until = last.saturating_add(email_wait_ms(email.attempt_count, limits));
        if now_ms < until {
            return Err(Refusal::Wait { retry_after_seconds: (until - now_ms).div_ceil(1000).max(1) });
        }
    }
    Ok(())
}

/// Judges a registration from an address whose counter has this attempt counted.
pub fn judge_registration(counter: &Counter, now_ms: u64, limits: &RegisterLimits) -> Result<(), Refusal> {
    if counter.attempt_count > u64::from(limits.per_ip) {
        let retry_after_seconds = retry_after_seconds(counter.window_started_at, now_ms, limits.window_seconds);
        return Err(Refusal::Locked { retry_after_seconds });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_000_000_000;
    const L: LoginLimits =
        LoginLimits { per_email_ip: 5, per_ip: 20, per_email: 5, email_delay_seconds: 1, window_seconds: 900 };

    fn counter(attempt_count: u64) -> Counter {
        Counter { attempt_count, window_started_at: T - 60_000 }
    }

    fn counts(ip: u64, email_ip: u64, email: Option<(u64, u64)>) -> LoginCounts {
        LoginCounts {
            ip: counter(ip),
            email_ip: counter(email_ip),
            email: email.map(|(attempt_count, last)| EmailFailures {
                attempt_count,
                window_started_at: T - 120_000,
                last_failure_at: Some(last),
            }),
        }
    }

    #[test]
    fn keys_hide_the_email_and_tell_addresses_apart() {
        let k = email_key("ada@example.com");
        assert!(k.starts_with("email:"));
        assert!(!k.contains("ada"));
        assert_eq!(k, email_key("ada@example.com"));
        let pair = email_ip_key("ada@example.com", "10.0.0.1");
        assert!(pair.starts_with("email_ip:") && !pair.contains("ada") && !pair.contains("10.0.0.1"));
        assert_ne!(pair, email_ip_key("ada@example.com", "10.0.0.2"));
        assert_ne!(pair, email_ip_key("ada@example.co", "m\n10.0.0.1"));
        assert_eq!(register_key("10.0.0.1"), "register:10.0.0.1");
        assert_ne!(register_key("10.0.0.1"), ip_key("10.0.0.1"));
    }

    #[test]
    fn retry_after_counts_down_to_the_window_end() {
        assert_eq!(retry_after_seconds(1_000_000, 1_000_000, 900), 900);
        assert_eq!(retry_after_seconds(1_000_000, 1_000_000 + 899_500, 900), 1);
        assert_eq!(retry_after_seconds(1_000_000, 1_000_000 + 901_000, 900), 1);
        assert_eq!(window_cutoff(1_000_000, 900), 100_000);
        assert_eq!(retry_after_seconds(u64::MAX, 0, u64::MAX), u64::MAX.div_ceil(1000));
    }

    #[test]
    fn an_address_is_locked_for_an_email_after_its_own_failures_whatever_the_password() {
        assert_eq!(judge_login(&counts(1, 5, None), T, &L), Ok(()));
        assert_eq!(judge_login(&counts(6, 6, None), T, &L), Err(Refusal::Locked { retry_after_seconds: 840 }));
        assert_eq!(judge_login(&counts(21, 1, None), T, &L), Err(Refusal::Locked { retry_after_seconds: 840 }));
    }

    #[test]
    fn an_address_that_has_not_failed_is_never_kept_waiting_by_the_email() {
        // A thousand failures from elsewhere, the last one just now.
        assert_eq!(judge_login(&counts(1, 1, Some((1000, T))), T, &L), Ok(()));
    }

    #[test]
    fn an_address_that_has_failed_waits_a_doubling_delay_once_the_email_has_many_failures() {
        assert_eq!(judge_login(&counts(2, 2, Some((5, T))), T, &L), Ok(()), "up to per_email: no wait");
        assert_eq!(judge_login(&counts(2, 2, Some((6, T))), T, &L), Err(Refusal::Wait { retry_after_seconds: 1 }));
        assert_eq!(
            judge_login(&counts(2, 2, Some((8, T))), T + 1000, &L),
            Err(Refusal::Wait { retry_after_seconds: 3 })
        );
        assert_eq!(judge_login(&counts(2, 2, Some((8, T))), T + 4000, &L), Ok(()));
        assert_eq!(judge_login(&counts(2, 2, Some((60, T))), T, &L), Err(Refusal::Wait { retry_after_seconds: 900 }));
    }

    #[test]
    fn an_email_count_from_an_ended_window_imposes_nothing() {
        let mut c = counts(2, 2, Some((60, T)));
        c.email = c.email.map(|e| EmailFailures { window_started_at: T - 901_000, ..e });
        assert_eq!(judge_login(&c, T, &L), Ok(()));
    }

    #[test]
    fn email_waits_double_from_the_first_delay_and_stop_at_the_window() {
        let waits: Vec<u64> = (0..=10).map(|n| email_wait_ms(n, &L)).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 0, 1000, 2000, 4000, 8000, 16000]);
        assert_eq!(email_wait_ms(u64::MAX, &L), 900_000);
        let slow = LoginLimits { email_delay_seconds: u64::MAX, ..L };
        assert_eq!(email_wait_ms(7, &slow), 900_000);
    }

    #[test]
    fn registrations_beyond_the_address_limit_are_refused_until_the_window_ends() {
        let l = RegisterLimits::default();
        let c = |n| Counter { attempt_count: n, window_started_at: T };
        assert_eq!(judge_registration(&c(10), T, &l), Ok(()));
        assert_eq!(judge_registration(&c(11), T + 600_000, &l), Err(Refusal::Locked { retry_after_seconds: 3000 }));
    }
}
