//! Request ids: which incoming `x-request-id` values are echoed, and how new ones are made.

/// Longest incoming request id that is echoed rather than replaced.
pub const MAX_LEN: usize = 128;

/// Returns the incoming id when it is safe to echo: 1 to 128 characters of
/// `A-Z a-z 0-9 - _ . :` (nothing that could split a header or a log line).
pub fn accept(incoming: Option<&str>) -> Option<&str> {
    let id = incoming?;
    let ok = !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(id)
}

/// A new request id from 16 bytes (random, or an isolate's random prefix and a counter): 32
/// lowercase hex characters.
pub fn generate(random: [u8; 16]) -> String {
    hex(&random)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_incoming_id_is_echoed() {
        assert_eq!(accept(Some("req-123_abc.def:9")), Some("req-123_abc.def:9"));
    }

    #[test]
    fn ids_that_could_inject_into_headers_or_logs_are_replaced() {
        for bad in ["", "a b", "a\r\nx-evil: 1", "quote\"", "{json}", "é"] {
            assert_eq!(accept(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(accept(Some(&"a".repeat(MAX_LEN + 1))), None);
        assert_eq!(accept(Some(&"a".repeat(MAX_LEN))).map(str::len), Some(MAX_LEN));
        assert_eq!(accept(None), None);
    }

    #[test]
    fn generated_ids_are_32_hex_chars_and_acceptable() {
        let id = generate([0xab; 16]);
        assert_eq!(id.len(), 32);
        assert_eq!(&id[..4], "abab");
        assert_eq!(accept(Some(&id)), Some(id.as_str()));
        assert_ne!(generate([1; 16]), generate([2; 16]));
    }
}
