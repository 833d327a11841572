//! Opaque secrets (refresh tokens, API keys): generation, storage hashes, display prefixes,
//! and constant-time comparison.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "ec_rt_";
/// Prefix of API keys: recognisable in configs and secret scanners.
pub const API_KEY_PREFIX: &str = "ec_sk_";
/// Characters of an API key shown in listings.
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// A refresh token: the prefix and 256 random bits.
pub fn refresh_token(random: [u8; 32]) -> String {
    format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// An API key: the prefix and 256 random bits.
pub fn api_key(random: [u8; 32]) -> String {
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// What is stored for a secret: SHA-256 hex. The secrets carry 256 random bits, so a fast
/// hash is enough (no password-style stretching needed).
pub fn storage_hash(secret: &str) -> String {
    crate::request_id::hex(&Sha256::digest(secret.as_bytes()))
}

/// The start of an API key shown in listings after creation.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(DISPLAY_PREFIX_LEN).collect()
}

/// True when `s` has the shape of a secret with `prefix` (43 base64url chars after it).
pub fn has_shape(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|r| r.len() == 43 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Compares in time independent of where the inputs differ (the lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_prefix_and_256_bits() {
        let t = refresh_token([9; 32]);
        assert!(has_shape(REFRESH_TOKEN_PREFIX, &t));
        assert!(!has_shape(API_KEY_PREFIX, &t));
        let k = api_key([9; 32]);
        assert!(has_shape(API_KEY_PREFIX, &k));
        assert_eq!(display_prefix(&k).len(), DISPLAY_PREFIX_LEN);
        assert_ne!(api_key([1; 32]), api_key([2; 32]));
    }

    #[test]
    fn storage_hash_is_sha256_hex() {
        assert_eq!(storage_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn ct_eq_compares_exactly() {
        assert!(ct_eq(b"same", b"same"));
        assert!(!ct_eq(b"same", b"sama"));
        assert!(!ct_eq(b"same", b"same+"));
        assert!(ct_eq(b"", b""));
    }
}
