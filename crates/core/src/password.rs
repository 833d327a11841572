//! Password rules and the stored hash format: PBKDF2-HMAC-SHA256 with its parameters beside
//! the hash, so the iteration count can be raised later (rehash on login).
//!
//! The derivation itself runs in the runtime's WebCrypto (native code) at the edge.

use crate::secret::ct_eq;
use crate::ApiError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;
/// Default and highest iteration count: the Workers runtime caps PBKDF2 at 100,000.
pub const MAX_ITERATIONS: u32 = 100_000;
pub const SALT_BYTES: usize = 16;
pub const HASH_BYTES: usize = 32;
const SCHEME: &str = "pbkdf2-sha256";

/// Checks length in characters (not bytes): 8 to 128.
pub fn validate(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(ApiError::validation(format!("password must be at least {MIN_CHARS} characters")));
    }
    if n > MAX_CHARS {
        return Err(ApiError::validation(format!("password must be at most {MAX_CHARS} characters")));
    }
    Ok(())
}

/// A stored password hash: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl PasswordHash {
    pub fn encode(&self) -> String {
        format!("{SCHEME}${}${}${}", self.iterations, STANDARD.encode(&self.salt), STANDARD.encode(&self.hash))
    }

    pub fn parse(stored: &str) -> Option<Self> {
        let mut parts = stored.split('$');
        if parts.next()? != SCHEME {
            return None;
        }
        let iterations = parts.next()?.parse().ok().filter(|n| *n > 0)?;
        let salt = STANDARD.decode(parts.next()?).ok()?;
        let hash = STANDARD.decode(parts.next()?).ok()?;
        if parts.next().is_some() || hash.len() != HASH_BYTES {
            return None;
        }
        Some(Self { iterations, salt, hash })
    }

    /// Constant-time check of a freshly derived hash against this one.
    pub fn matches(&self, derived: &[u8]) -> bool {
        ct_eq(&self.hash, derived)
    }

    /// True when this hash was made with fewer iterations than the current setting.
    pub fn needs_rehash(&self, current_iterations: u32) -> bool {
        self.iterations < current_iterations
    }
}

/// A fixed hash for unknown emails, so login does the same work whether or not the account
/// exists (no timing oracle for account enumeration).
pub fn decoy(iterations: u32) -> PasswordHash {
    PasswordHash { iterations, salt: vec![0x5a; SALT_BYTES], hash: vec![0; HASH_BYTES] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert_eq!(validate("short").unwrap_err().status, 422);
        assert!(validate("12345678").is_ok());
        assert!(validate(&"é".repeat(128)).is_ok(), "counted in characters, not bytes");
        assert!(validate(&"a".repeat(129)).is_err());
        assert!(validate("ñññññññ").is_err());
    }

    #[test]
    fn the_stored_format_round_trips_with_its_parameters() {
        let h = PasswordHash { iterations: 100_000, salt: vec![1; SALT_BYTES], hash: vec![2; HASH_BYTES] };
        let s = h.encode();
        assert!(s.starts_with("pbkdf2-sha256$100000$"));
        assert_eq!(PasswordHash::parse(&s), Some(h));
    }

    #[test]
    fn malformed_stored_hashes_do_not_parse() {
        for bad in [
            "",
            "bcrypt$10$x$y",
            "pbkdf2-sha256$0$AA==$AA==",
            "pbkdf2-sha256$x$AA==$AA==",
            "pbkdf2-sha256$10$!!$AA==",
            "pbkdf2-sha256$10$AA==$AA==$extra",
        ] {
            assert_eq!(PasswordHash::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn salts_and_hashes_are_canonical_padded_standard_base64() {
        let salt = |text: &str| {
            let stored = format!("pbkdf2-sha256$10${text}${}", STANDARD.encode([2; HASH_BYTES]));
            PasswordHash::parse(&stored).map(|h| h.salt)
        };
        assert_eq!(salt("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(salt("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(salt(""), Some(vec![]));
        for bad in ["Zg", "Zg=", "Zg===", "Z===", "Zh==", "Zm9=", "Zm8", "Z", "Zm9v Yg==", "Zm-v", "====", "Zg==Zg=="] {
            assert_eq!(salt(bad), None, "{bad}");
        }
        let h = PasswordHash { iterations: 7, salt: b"foob".to_vec(), hash: vec![0xfb; HASH_BYTES] };
        assert!(h.encode().starts_with("pbkdf2-sha256$7$Zm9vYg==$+/v7"), "{}", h.encode());
    }

    #[test]
    fn rehash_is_needed_only_below_the_current_iterations() {
        let h = PasswordHash { iterations: 50_000, salt: vec![], hash: vec![0; HASH_BYTES] };
        assert!(h.needs_rehash(100_000));
        assert!(!h.needs_rehash(50_000));
    }

    #[test]
    fn matches_requires_the_exact_hash() {
        let h = PasswordHash { iterations: 1, salt: vec![], hash: vec![3; HASH_BYTES] };
        assert!(h.matches(&[3; HASH_BYTES]));
        assert!(!h.matches(&[4; HASH_BYTES]));
        assert!(!decoy(1).matches(&[3; HASH_BYTES]));
    }
}
