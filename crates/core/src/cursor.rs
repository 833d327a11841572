//! Keyset pagination: opaque `cursor` tokens, the `limit` parameter and query-string reading.

use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// Longest id a cursor carries; ids are `[A-Za-z0-9_-]`.
const MAX_ID_CHARS: usize = 64;
/// Longest raw cursor accepted; a real one is at most 115 characters.
const MAX_RAW_CHARS: usize = 128;
/// The first byte of the decoded form, so the format can change without misreading old cursors.
const VERSION: char = '1';

/// A position in a list: the last row's sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

impl Cursor {
    /// The opaque, URL-safe token: unpadded base64url of `1{key}:{id}`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{VERSION}{}:{}", self.key, self.id))
    }

    /// Reads a token made by [`Cursor::encode`]; anything else is a 400 `invalid_cursor`.
    pub fn decode(raw: &str) -> Result<Cursor, ApiError> {
        Self::try_decode(raw).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor is not valid; pass the next_cursor of a previous page unchanged",
            )
        })
    }

    fn try_decode(raw: &str) -> Option<Cursor> {
        if raw.len() > MAX_RAW_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (key_text, id) = text.strip_prefix(VERSION)?.split_once(':')?;
        let key: i64 = key_text.parse().ok()?;
        let id_ok = (1..=MAX_ID_CHARS).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        // Only the canonical spelling of the key ("5", not "+5" or "05"), so each position has
        // exactly one token.
        (id_ok && key.to_string() == key_text).then(|| Cursor { key, id: id.to_string() })
    }
}

/// Parses `limit`: absent is [`DEFAULT_LIMIT`]; a decimal from 1 to [`MAX_LIMIT`] is that
/// number; anything else is a 400 `invalid_limit`.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    // `u32::from_str` alone would accept "+5".
    raw.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| raw.parse::<u32>().ok())
        .flatten()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request("invalid_limit", format!("limit must be an integer from 1 to {MAX_LIMIT}"))
        })
}

/// The percent-decoded value (`+` as space) of the first `name` in `query` (given without the
/// leading `?`); `None` when absent. Malformed escapes are kept literally.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(key) == name).then(|| decode_component(value))
    })
}

fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits rows fetched with `LIMIT limit + 1` into the page (the first `limit` rows) and the
/// next cursor, built from the last row kept; `None` when no row was left over.
pub fn page<T>(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|row| cursor_of(row).encode());
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(key: i64, id: &str) -> Cursor {
        Cursor { key, id: id.to_string() }
    }

    fn is_invalid_cursor(raw: &str) -> bool {
        matches!(Cursor::decode(raw), Err(e) if e.status == 400 && e.code == "invalid_cursor")
    }

    #[test]
    fn cursors_round_trip_through_an_url_safe_token() {
        let long_id = "a".repeat(MAX_ID_CHARS);
        for c in [cursor(0, "cnv_abc"), cursor(-42, "msg_A-b_9"), cursor(i64::MAX, "x"), cursor(i64::MIN, &long_id)] {
            let token = c.encode();
            assert!(token.len() <= MAX_RAW_CHARS, "{token}");
            assert!(!token.contains(['+', '/', '=']), "{token}");
            assert_eq!(Cursor::decode(&token), Ok(c));
        }
    }

    #[test]
    fn tokens_not_made_by_encode_are_rejected() {
        let too_long_id = format!("15:{}", "a".repeat(MAX_ID_CHARS + 1));
        let overflow_and_long = ["199999999999999999999:a", too_long_id.as_str()];
        let forged = ["2:5:a", "1five:a", "1+5:a", "105:a", "15:", "15", "15:a b", "15:a/b"]
            .iter()
            .chain(&overflow_and_long)
            .map(|text| URL_SAFE_NO_PAD.encode(text));
        let garbage = ["", "!!!", "MTU6YQ==", &"A".repeat(MAX_RAW_CHARS + 1)].map(String::from);
        for raw in forged.chain(garbage) {
            assert!(is_invalid_cursor(&raw), "{raw:?}");
        }
    }

    #[test]
    fn cursors_are_canonical_unpadded_base64url() {
        assert_eq!(cursor(5, "a").encode(), "MTU6YQ");
        assert_eq!(Cursor::decode("MTU6YQ"), Ok(cursor(5, "a")));
        for bad in ["MTU6YQ==", "MTU6YR", "MTU6Y", "MTU+YQ", "MTU/YQ", "MTU6YQ\n", " MTU6YQ"] {
            assert!(is_invalid_cursor(bad), "{bad:?}");
        }
    }

    #[test]
    fn random_garbage_never_panics_and_is_never_accepted_unless_canonical() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/%.";
        for round in 0..600 {
            let len = (next() % 140) as usize;
            let raw: String = if round % 2 == 0 {
                (0..len).map(|_| alphabet[next() as usize % alphabet.len()] as char).collect()
            } else {
                // Well-formed base64 of random bytes, so the inner parser sees garbage too.
                let mut bytes: Vec<u8> = (0..len % 90).map(|_| next() as u8).collect();
                if let Some(first) = bytes.first_mut() {
                    *first = if round % 3 == 0 { b'1' } else { *first };
                }
                URL_SAFE_NO_PAD.encode(&bytes)
            };
            if let Ok(c) = Cursor::decode(&raw) {
                assert_eq!(c.encode(), raw);
            }
        }
    }

    #[test]
    fn limit_defaults_and_accepts_only_one_to_one_hundred() {
        assert_eq!(parse_limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(parse_limit(Some("1")), Ok(1));
        assert_eq!(parse_limit(Some("100")), Ok(100));
        for bad in "0|101|-1|+5|abc||1.5| 5|99999999999".split('|') {
            let err = parse_limit(Some(bad)).unwrap_err();
            assert_eq!((err.status, err.code), (400, "invalid_limit"), "{bad:?}");
            assert!(err.message.contains("1 to 100"));
        }
    }

    #[test]
    fn query_params_are_percent_decoded_and_the_first_wins() {
        let q = "qq=long&q=caf%C3%A9+au%20lait&q=second&empty=&flag&bad=%zz%4";
        assert_eq!(query_param(q, "q").as_deref(), Some("café au lait"));
        assert_eq!(query_param(q, "qq").as_deref(), Some("long"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("", "q"), None);
        assert_eq!(query_param("x=%FF", "x").as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn page_keeps_limit_rows_and_points_past_the_last_one() {
        let of = |n: &i64| cursor(*n, &format!("id{n}"));
        assert_eq!(page(vec![1, 2], 3, of), (vec![1, 2], None));
        assert_eq!(page(vec![1, 2, 3], 3, of), (vec![1, 2, 3], None));
        let (rows, next) = page(vec![1, 2, 3, 4], 3, of);
        assert_eq!(rows, vec![1, 2, 3]);
        assert_eq!(Cursor::decode(&next.unwrap()), Ok(cursor(3, "id3")));
        assert_eq!(page(vec![1], 0, of), (vec![], None));
    }
}
