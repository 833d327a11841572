//! Resource ids: random, opaque, prefixed by kind (`usr_`, `ses_`, `key_`, ...).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

/// Length of the random part: 16 bytes in unpadded base64url.
const RANDOM_LEN: usize = 22;

/// A new id: `{prefix}_` followed by 128 random bits.
pub fn new_id(prefix: &str, random: [u8; 16]) -> String {
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(random))
}

/// True when `s` has the shape of an id of this kind; anything else cannot exist, so
/// handlers answer 404 without a query.
pub fn is_valid(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_')).is_some_and(|r| {
        r.len() == RANDOM_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_128_random_bits() {
        let id = new_id("usr", [7; 16]);
        assert!(id.starts_with("usr_"));
        assert_eq!(id.len(), 4 + RANDOM_LEN);
        assert!(is_valid("usr", &id));
        assert_ne!(new_id("usr", [1; 16]), new_id("usr", [2; 16]));
    }

    #[test]
    fn foreign_or_malformed_ids_are_rejected() {
        let id = new_id("usr", [7; 16]);
        assert!(!is_valid("key", &id));
        assert!(!is_valid("usr", &id[..id.len() - 1]));
        assert!(!is_valid("usr", "usr_'; DROP TABLE users;--xx"));
        assert!(!is_valid("usr", ""));
    }
}
