//! Access tokens: issuing and verifying short-lived HS256 JWTs (algorithm pinned, time passed in).

use crate::base64::{self, Alphabet::UrlUnpadded};
use crate::json::{self, Map, Value};
use crate::json_out::Object as JsonObject;
use crate::sha256::HmacSha256;

/// Longest `Authorization` token accepted; longer values are rejected before parsing.
pub const MAX_TOKEN_LEN: usize = 8192;
/// Default clock-skew allowance, in seconds, for `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

const ALGORITHM: &str = "HS256";
const ACCESS_TYPE: &str = "access";

/// What issuing and verifying need: the signing secret and the expected claims.
pub struct TokenSettings<'a> {
    /// HMAC secret, at least 32 bytes (validated by the configuration).
    pub secret: &'a [u8],
    /// `iss` written and required, e.g. `"edgechat"`.
    pub issuer: &'a str,
    /// `aud` written and required, e.g. `"edgechat"`.
    pub audience: &'a str,
    /// Lifetime of an access token, in seconds (default 900).
    pub access_ttl_seconds: u64,
    /// Clock-skew allowance for `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
}

/// The verified contents of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`: the user the token was issued to.
    pub user_id: String,
    /// `sid`: the session the token belongs to.
    pub session_id: String,
    /// `iat`, unix seconds.
    pub issued_at: u64,
    /// `exp`, unix seconds.
    pub expires_at: u64,
}

/// Why a token was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    TooLong,
    /// Not three base64url segments of JSON with the expected shapes.
    Malformed,
    /// Header `alg` is anything but `HS256`.
    WrongAlgorithm,
    /// The HMAC does not match.
    BadSignature,
    /// `exp` is in the past beyond the leeway.
    Expired,
    /// `nbf` is in the future beyond the leeway.
    NotYetValid,
    /// `iss` is missing or not ours.
    WrongIssuer,
    /// `aud` is missing or does not contain ours.
    WrongAudience,
    /// `typ` is missing or not `"access"`.
    WrongType,
    /// `exp`, `iat`, `sub` or `sid` is missing or empty.
    MissingClaim,
}

impl TokenError {
    /// A snake_case name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::Malformed => "malformed",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongType => "wrong_type",
            Self::MissingClaim => "missing_claim",
        }
    }
}

/// The one header this module writes: `{"alg":"HS256","typ":"JWT"}`.
const HEADER_JSON: &str = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
/// An HMAC-SHA256 tag is 32 bytes.
const SIGNATURE_LEN: usize = 32;
/// The unix-seconds range a timestamp claim may take (that of a proleptic Gregorian
/// date-time with a year in -262143..=262142): anything outside it is malformed, and issuing
/// saturates at its top.
const MIN_TIMESTAMP: i64 = -8_334_601_228_800;
const MAX_TIMESTAMP: i64 = 8_210_266_876_799;

/// A decoded header or claims set. Parsed whole, so only a JSON object will do.
type Object = Map;

fn parse_object(text: &[u8]) -> Result<Object, TokenError> {
    match json::parse(text) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(TokenError::Malformed),
    }
}

/// An optional string member: absent or null is `None`, any other non-string is malformed.
/// (The registered header parameters are type-checked this way even though only `alg` and
/// `cty` decide anything, so an ill-typed header is malformed whatever its signature.)
fn text<'a>(object: &'a Object, name: &str) -> Result<Option<&'a str>, TokenError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// A NumericDate member: absent is `None`; otherwise an integer, or a number truncated to one,
/// within the timestamp range (null or anything else is malformed).
fn timestamp(object: &Object, name: &str) -> Result<Option<i64>, TokenError> {
    let Some(value) = object.get(name) else { return Ok(None) };
    let Value::Number(n) = value else { return Err(TokenError::Malformed) };
    let seconds = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i,
        (None, Some(_), _) => return Err(TokenError::Malformed),
        (None, None, Some(f)) => f as i64,
        (None, None, None) => return Err(TokenError::Malformed),
    };
    ensure((MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&seconds), TokenError::Malformed)?;
    Ok(Some(seconds))
}

/// An `x5t`/`x5t#S256` value must be base64url (up to two `=` tolerated) of exactly `len`
/// bytes, or of more bytes that are UTF-8.
fn thumbprint_ok(value: &str, len: usize) -> bool {
    let value = value.strip_suffix('=').unwrap_or(value);
    let value = value.strip_suffix('=').unwrap_or(value);
    match (value.len() * 3 / 4).cmp(&len) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => base64::decode(value, UrlUnpadded).is_some_and(|b| b.len() == len),
        std::cmp::Ordering::Greater => base64::decode(value, UrlUnpadded).is_some_and(|b| String::from_utf8(b).is_ok()),
    }
}

fn to_timestamp(seconds: u64) -> u64 {
    seconds.min(MAX_TIMESTAMP as u64)
}

/// Signs an access token: header alg HS256 (pinned) and typ "JWT"; claims sub=user_id,
/// sid=session_id, iat, nbf (= iat), exp (= iat + ttl), iss, aud (a single string),
/// typ = "access".
pub fn issue_access_token(settings: &TokenSettings, user_id: &str, session_id: &str, now_ms: u64) -> String {
    let iat = now_ms / 1000;
    let claims = JsonObject::new()
        .num("exp", to_timestamp(iat.saturating_add(settings.access_ttl_seconds)))
        .num("nbf", to_timestamp(iat))
        .num("iat", to_timestamp(iat))
        .str("sub", user_id)
        .str("sid", session_id)
        .str("iss", settings.issuer)
        .str("aud", settings.audience)
        .str("typ", ACCESS_TYPE)
        .end();
    let mut mac = HmacSha256::new(settings.secret);
    let mut token = base64::encode(HEADER_JSON.as_bytes(), UrlUnpadded);
    token.push('.');
    token.push_str(&base64::encode(claims.as_bytes(), UrlUnpadded));
    mac.update(token.as_bytes());
    token.push('.');
    token.push_str(&base64::encode(&mac.finish(), UrlUnpadded));
    token
}

/// Verifies: length <= MAX_TOKEN_LEN, three dot-separated base64url segments, header alg
/// exactly HS256, HMAC signature (constant-time), exp (required, leeway applied), nbf (optional,
/// leeway applied), iss, aud (a string or an array containing it), typ == "access", non-empty
/// sub and sid, and iat present.
pub fn verify_access_token(settings: &TokenSettings, token: &str, now_ms: u64) -> Result<AccessClaims, TokenError> {
    use TokenError::*;
    ensure(token.len() <= MAX_TOKEN_LEN, TooLong)?;
    let mut parts = token.splitn(4, '.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed);
    };
    let header = base64::decode(header, UrlUnpadded).ok_or(Malformed)?;
    let claims = base64::decode(claims, UrlUnpadded).ok_or(Malformed)?;
    let signature = base64::decode(signature, UrlUnpadded).ok_or(Malformed)?;
    let header = parse_object(&header)?;
    let alg = text(&header, "alg")?.ok_or(Malformed)?;
    for name in ["jku", "kid", "x5u", "typ"] {
        text(&header, name)?;
    }
    ensure(text(&header, "cty")?.is_none_or(|cty| cty.eq_ignore_ascii_case("json")), Malformed)?;
    ensure(text(&header, "x5t")?.is_none_or(|t| thumbprint_ok(t, 20)), Malformed)?;
    ensure(text(&header, "x5t#S256")?.is_none_or(|t| thumbprint_ok(t, 32)), Malformed)?;
    ensure(alg == ALGORITHM, WrongAlgorithm)?;
    ensure(signature.len() == SIGNATURE_LEN, BadSignature)?;
    // Parsing the claims is cheaper than the HMAC; neither is trusted until the HMAC matches.
    let claims = parse_object(&claims)?;
    let (exp, nbf, iat) = (timestamp(&claims, "exp")?, timestamp(&claims, "nbf")?, timestamp(&claims, "iat")?);
    let (sub, sid) = (text(&claims, "sub")?, text(&claims, "sid")?);
    let (iss, typ) = (text(&claims, "iss")?, text(&claims, "typ")?);
    let signed = token.rsplit_once('.').map_or("", |(signed, _)| signed);
    let mut mac = HmacSha256::new(settings.secret);
    mac.update(signed.as_bytes());
    ensure(mac.verify(&signature), BadSignature)?;

    // Time checks in plain saturating integers: a signed token could carry an extreme nbf.
    let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let leeway = i64::try_from(settings.leeway_seconds).unwrap_or(i64::MAX);
    let exp = exp.ok_or(MissingClaim)?;
    ensure(now <= exp.saturating_add(leeway), Expired)?;
    let nbf = nbf.unwrap_or(i64::MIN);
    ensure(now >= nbf.saturating_sub(leeway), NotYetValid)?;

    ensure(iss == Some(settings.issuer), WrongIssuer)?;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == settings.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(settings.audience)),
        _ => false,
    };
    ensure(audience_ok, WrongAudience)?;
    ensure(typ == Some(ACCESS_TYPE), WrongType)?;
    let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string).ok_or(MissingClaim);
    let iat = iat.ok_or(MissingClaim)?;
    Ok(AccessClaims {
        user_id: non_empty(sub)?,
        session_id: non_empty(sid)?,
        issued_at: u64::try_from(iat).map_err(|_| Malformed)?,
        expires_at: u64::try_from(exp).map_err(|_| Malformed)?,
    })
}

fn ensure(ok: bool, err: TokenError) -> Result<(), TokenError> {
    ok.then_some(()).ok_or(err)
}

#[cfg(test)]
mod tests {
    use super::TokenError::*;
    use super::*;
    use base64ct::{Base64UrlUnpadded as B64, Encoding};
    use hmac::{digest::KeyInit, Hmac, Mac};
    use serde_json::{json, Value};
    use sha2::{Sha256, Sha384, Sha512};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";
    const NOW_MS: u64 = 1_700_000_000_000;
    const NOW: u64 = NOW_MS / 1000;
    const LEEWAY: u64 = DEFAULT_LEEWAY_SECONDS;
    const SETTINGS: TokenSettings<'static> = TokenSettings {
        secret: SECRET,
        issuer: "edgechat",
        audience: "edgechat",
        access_ttl_seconds: 900,
        leeway_seconds: LEEWAY,
    };

    fn verify(token: &str) -> Result<AccessClaims, TokenError> {
        verify_access_token(&SETTINGS, token, NOW_MS)
    }

    fn issue() -> String {
        issue_access_token(&SETTINGS, "user-1", "sess-1", NOW_MS)
    }

    fn b64(json: &Value) -> String {
        B64::encode_string(json.to_string().as_bytes())
    }

    fn sign<M: Mac + KeyInit>(header: &Value, payload: &Value, secret: &[u8]) -> String {
        let signed = format!("{}.{}", b64(header), b64(payload));
        let mut mac = <M as KeyInit>::new_from_slice(secret).expect("any key length");
        mac.update(signed.as_bytes());
        let signature = B64::encode_string(&mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    fn good_payload() -> Value {
        json!({"sub": "u1", "sid": "s1", "iat": NOW, "nbf": NOW, "exp": NOW + 900,
               "iss": "edgechat", "aud": "edgechat", "typ": "access"})
    }

    /// A correctly signed token whose `key` claim is `value` (removed when `value` is null).
    fn craft(key: &str, value: Value) -> String {
        let mut payload = good_payload();
        match value {
            Value::Null => payload.as_object_mut().map(|o| o.remove(key)),
            value => payload.as_object_mut().map(|o| o.insert(key.into(), value)),
        };
        sign::<Hmac<Sha256>>(&json!({"alg": "HS256", "typ": "JWT"}), &payload, SECRET)
    }

    #[test]
    fn a_fresh_token_verifies_and_round_trips_its_claims() {
        let token = issue_access_token(&SETTINGS, "user-1", "sess-1", NOW_MS + 999);
        let claims = verify(&token).expect("fresh token verifies");
        assert_eq!((claims.user_id.as_str(), claims.session_id.as_str()), ("user-1", "sess-1"));
        assert_eq!((claims.issued_at, claims.expires_at), (NOW, NOW + 900));
        assert_eq!(verify(&craft("sub", json!("u2"))).map(|c| c.user_id), Ok("u2".into()));
        assert_eq!(WrongAlgorithm.as_str(), "wrong_algorithm");
    }

    #[test]
    fn alg_none_and_hs512_hs384_or_rs256_headers_are_the_wrong_algorithm_even_when_re_signed() {
        let (p, alg) = (&good_payload(), |name| json!({"alg": name, "typ": "JWT"}));
        let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(p));
        let hs512 = sign::<Hmac<Sha512>>(&alg("HS512"), p, SECRET);
        let hs384 = sign::<Hmac<Sha384>>(&alg("HS384"), p, SECRET);
        let rs256 = sign::<Hmac<Sha256>>(&alg("RS256"), p, SECRET);
        for token in [none, hs512, hs384, rs256] {
            assert_eq!(verify(&token), Err(WrongAlgorithm), "{token}");
        }
    }

    #[test]
    fn a_tampered_payload_with_the_original_signature_is_a_bad_signature() {
        let token = craft("sub", json!("u1"));
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = good_payload();
        evil["sub"] = json!("admin");
        let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);
        assert_eq!(verify(&tampered), Err(BadSignature));
    }

    #[test]
    fn a_flipped_or_truncated_signature_or_another_secret_is_rejected() {
        let token = issue();
        let (body, sig) = token.rsplit_once('.').expect("three parts");
        let first = if sig.starts_with('A') { 'B' } else { 'A' };
        let flipped = format!("{body}.{first}{}", &sig[1..]);
        assert_eq!(verify(&flipped), Err(BadSignature));
        let truncated = verify(&token[..token.len() - 4]);
        assert!(matches!(truncated, Err(BadSignature | Malformed)), "{truncated:?}");
        let other = sign::<Hmac<Sha256>>(&json!({"alg": "HS256"}), &good_payload(), &[7; 32]);
        assert_eq!(verify(&other), Err(BadSignature));
    }

    #[test]
    fn expiry_and_not_before_are_enforced_beyond_the_leeway_only() {
        let at = |s: u64| verify_access_token(&SETTINGS, &issue(), s * 1000);
        assert!(at(NOW + 900 + LEEWAY).is_ok());
        assert_eq!(at(NOW + 900 + LEEWAY + 1), Err(Expired));
        assert!(verify(&craft("nbf", json!(NOW + LEEWAY))).is_ok());
        let early = craft("nbf", json!(NOW + LEEWAY + 1));
        assert_eq!(verify(&early), Err(NotYetValid));
        assert!(verify(&craft("nbf", Value::Null)).is_ok());
    }

    #[test]
    fn issuer_audience_and_type_must_match_but_an_audience_array_may_contain_ours() {
        assert_eq!(verify(&craft("iss", json!("evil"))), Err(WrongIssuer));
        assert_eq!(verify(&craft("aud", json!("other"))), Err(WrongAudience));
        assert_eq!(verify(&craft("aud", json!(["a", "b"]))), Err(WrongAudience));
        assert!(verify(&craft("aud", json!(["other", "edgechat"]))).is_ok());
        assert_eq!(verify(&craft("typ", json!("refresh"))), Err(WrongType));
        assert_eq!(verify(&craft("typ", Value::Null)), Err(WrongType));
    }

    #[test]
    fn missing_sub_sid_exp_or_iat_is_a_missing_claim() {
        for key in ["sub", "sid", "exp", "iat"] {
            assert_eq!(verify(&craft(key, Value::Null)), Err(MissingClaim), "{key}");
        }
        assert_eq!(verify(&craft("sub", json!(""))), Err(MissingClaim));
    }

    #[test]
    fn two_or_four_segments_bad_base64_opaque_and_empty_strings_are_malformed() {
        let token = issue();
        let two = token.rsplit_once('.').map_or("", |(a, _)| a);
        let four = format!("{token}.AAAA");
        for bad in [two, &four, "ec_rt_abc", "", "e30.e30.!!!!", "%%.%%.%%"] {
            assert_eq!(verify(bad), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn ill_typed_or_out_of_range_contents_are_malformed_even_when_signed() {
        let hs256 = json!({"alg": "HS256"});
        let signed = |header: &Value, payload: &Value| sign::<Hmac<Sha256>>(header, payload, SECRET);
        for header in [json!(["HS256"]), json!({"alg": "HS256", "cty": "cbor"}), json!({"alg": "HS256", "kid": 1})] {
            assert_eq!(verify(&signed(&header, &good_payload())), Err(Malformed), "{header}");
        }
        assert!(verify(&signed(&json!({"alg": "HS256", "cty": "JSON"}), &good_payload())).is_ok());
        assert_eq!(verify(&signed(&hs256, &json!(["u1"]))), Err(Malformed));
        let mut null_exp = good_payload();
        null_exp["exp"] = Value::Null;
        assert_eq!(verify(&signed(&hs256, &null_exp)), Err(Malformed));
        let max = 8_210_266_876_799_i64;
        for (key, value) in [("exp", json!("1")), ("exp", json!(max + 1)), ("iat", json!(-1))] {
            assert_eq!(verify(&craft(key, value.clone())), Err(Malformed), "{key}: {value}");
        }
        // A fractional NumericDate is truncated; a huge ttl saturates at the top of the range.
        assert_eq!(verify(&craft("exp", json!(NOW as f64 + 900.9))).map(|c| c.expires_at), Ok(NOW + 900));
        let forever = TokenSettings { access_ttl_seconds: u64::MAX, ..SETTINGS };
        let token = issue_access_token(&forever, "u", "s", NOW_MS);
        assert_eq!(verify_access_token(&forever, &token, NOW_MS).map(|c| c.expires_at), Ok(max as u64));
    }

    #[test]
    fn a_token_over_8_kb_is_too_long() {
        let huge = craft("pad", json!("x".repeat(MAX_TOKEN_LEN)));
        assert_eq!(verify(&huge), Err(TooLong));
    }

    #[test]
    fn verification_never_panics_on_arbitrary_input() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let valid = issue().into_bytes();
        let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/{}\":";
        for round in 0..400 {
            let len = next() % 200;
            let bytes: Vec<u8> = match round % 3 {
                0 => (0..len).map(|_| next() as u8).collect(),
                1 => (0..len).map(|_| chars[next() % chars.len()]).collect(),
                // A valid token with one byte replaced reaches the deeper parsing paths.
                _ => {
                    let mut b = valid.clone();
                    let at = next() % b.len();
                    b[at] = chars[next() % chars.len()];
                    b
                }
            };
            let _ = verify(&String::from_utf8_lossy(&bytes));
        }
        // Extreme but validly signed timestamps must not panic in the time arithmetic.
        for t in [-8_334_601_228_800_i64, 8_210_298_412_799, i64::MIN, i64::MAX] {
            for key in ["exp", "nbf", "iat"] {
                let _ = verify_access_token(&SETTINGS, &craft(key, json!(t)), u64::MAX);
                let _ = verify(&craft(key, json!(t)));
            }
        }
        let leeway_seconds = u64::MAX;
        let extreme = TokenSettings { access_ttl_seconds: u64::MAX, leeway_seconds, ..SETTINGS };
        let token = issue_access_token(&extreme, "u", "s", u64::MAX);
        let _ = verify_access_token(&extreme, &token, 0);
    }
}
