//! Base64 in the two forms edgechat uses: URL-safe without padding (tokens, ids, cursors, JWT
//! parts) and standard with padding (password hashes). Decoding is strict: any character
//! outside the alphabet, misplaced padding, an impossible length or a last character with
//! unused bits set is refused, so each byte string has exactly one accepted text.
//! (It replaces base64ct, whose generic encoders cost ~2 KB gzip of wasm.)

/// Which Base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// `A-Z a-z 0-9 - _`, no `=` (RFC 4648 section 5).
    UrlUnpadded,
    /// `A-Z a-z 0-9 + /`, `=` padding to a multiple of 4 (RFC 4648 section 4).
    StandardPadded,
}

use Alphabet::*;

fn encode_6(v: u32, alphabet: Alphabet) -> char {
    let v = (v & 63) as u8;
    char::from(match v {
        0..=25 => b'A' + v,
        26..=51 => b'a' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 if alphabet == UrlUnpadded => b'-',
        62 => b'+',
        _ if alphabet == UrlUnpadded => b'_',
        _ => b'/',
    })
}

fn decode_6(c: u8, alphabet: Alphabet) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' if alphabet == UrlUnpadded => 62,
        b'_' if alphabet == UrlUnpadded => 63,
        b'+' if alphabet == StandardPadded => 62,
        b'/' if alphabet == StandardPadded => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// `bytes` as Base64 text.
pub fn encode(bytes: &[u8], alphabet: Alphabet) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let at = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = at(0) << 16 | at(1) << 8 | at(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(encode_6(n >> (18 - 6 * i), alphabet));
            } else if alphabet == StandardPadded {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes `text` encodes, or `None` when it is not exactly Base64 of this alphabet.
pub fn decode(text: &str, alphabet: Alphabet) -> Option<Vec<u8>> {
    let mut s = text.as_bytes();
    if alphabet == StandardPadded {
        let padding = s.iter().rev().take_while(|&&c| c == b'=').count();
        if !s.len().is_multiple_of(4) || padding > 2 {
            return None;
        }
        s = &s[..s.len() - padding];
    }
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    for chunk in s.chunks(4) {
        let mut n = 0;
        for (i, &c) in chunk.iter().enumerate() {
            n |= decode_6(c, alphabet)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        // The bits of a short last chunk that make no byte must be zero.
        if n & ((1 << (24 - 8 * bytes)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..=bytes]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64, Base64UrlUnpadded, Encoding};
    use proptest::prelude::*;

    #[test]
    fn rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(encode(plain.as_bytes(), StandardPadded), coded);
            assert_eq!(decode(coded, StandardPadded).as_deref(), Some(plain.as_bytes()));
            let unpadded = coded.trim_end_matches('=');
            assert_eq!(encode(plain.as_bytes(), UrlUnpadded), unpadded);
            assert_eq!(decode(unpadded, UrlUnpadded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(encode(&[0xfb, 0xff], UrlUnpadded), "-_8");
        assert_eq!(encode(&[0xfb, 0xff], StandardPadded), "+/8=");
    }

    #[test]
    fn anything_but_the_one_encoding_is_refused() {
        for bad in ["Zg", "Zg=", "Zg===", "Z===", "Zh==", "Zm9=", "Zm8", "Z", "Zm9v Yg==", "Zm-v", "====", "Zg==Zg=="] {
            assert_eq!(decode(bad, StandardPadded), None, "{bad}");
        }
        for bad in ["Zg==", "Z", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v\n", "Zm9vY"] {
            assert_eq!(decode(bad, UrlUnpadded), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn encoding_matches_base64ct(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(encode(&bytes, UrlUnpadded), Base64UrlUnpadded::encode_string(&bytes));
            prop_assert_eq!(encode(&bytes, StandardPadded), Base64::encode_string(&bytes));
            prop_assert_eq!(decode(&encode(&bytes, UrlUnpadded), UrlUnpadded), Some(bytes.clone()));
            prop_assert_eq!(decode(&encode(&bytes, StandardPadded), StandardPadded), Some(bytes));
        }

        #[test]
        fn decoding_accepts_and_refuses_what_base64ct_does(text in "[A-Za-z0-9+/_=-]{0,12}") {
            prop_assert_eq!(decode(&text, UrlUnpadded), Base64UrlUnpadded::decode_vec(&text).ok());
            prop_assert_eq!(decode(&text, StandardPadded), Base64::decode_vec(&text).ok());
        }
    }
}
