//! Access tokens: short-lived HS256 JWTs signed and verified by jwt-compact (algorithm pinned,
//! time passed in), with edgechat's own claim checks on top.

use chrono::{DateTime, TimeDelta, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Longest `Authorization` token accepted; longer values are rejected before parsing.
pub const MAX_TOKEN_LEN: usize = 8192;
/// Default clock-skew allowance, in seconds, for `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

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
    /// The header has `crit`: extensions the recipient must understand, and we know none.
    CriticalHeader,
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
            Self::CriticalHeader => "critical_header",
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

/// The header fields jwt-compact leaves to us (it reads `alg`, `cty`, `kid` and the like).
#[derive(Clone, Deserialize)]
struct ExtraHeader {
    /// RFC 7515 4.1.11: a token listing extensions in `crit` must be refused by a recipient
    /// that does not implement them, and we implement none; any value, even `null`, counts.
    #[serde(default)]
    crit: Present,
}

/// Whether a field was there at all, whatever its value.
#[derive(Clone, Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// The claims written beside `exp`, `nbf` and `iat` (which jwt-compact's [`Claims`] carries).
#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    sid: &'a str,
    iss: &'a str,
    /// A single string; an array is accepted on the way in.
    aud: &'a str,
    typ: &'a str,
}

/// The same claims as presented: each optional, so a missing one is reported as missing
/// rather than malformed. A present one of the wrong type is malformed.
#[derive(Deserialize)]
struct PresentedClaims {
    sub: Option<String>,
    sid: Option<String>,
    iss: Option<String>,
    /// A string or an array; any other value is simply not our audience.
    aud: Option<Value>,
    typ: Option<String>,
}

/// Unix `seconds` as a time, saturating at the top of the range jwt-compact's timestamps can
/// take (year 262142): a claim beyond it is malformed on the way in, and issuing stops there.
fn time(seconds: u64) -> DateTime<Utc> {
    i64::try_from(seconds).ok().and_then(|s| DateTime::from_timestamp(s, 0)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `seconds` as a duration, saturating (chrono's own constructors panic past their range).
fn span(seconds: u64) -> TimeDelta {
    i64::try_from(seconds).ok().and_then(TimeDelta::try_seconds).unwrap_or(TimeDelta::MAX)
}

/// Signs an access token: header alg HS256 (pinned) and typ "JWT"; claims sub=user_id,
/// sid=session_id, iat, nbf (= iat), exp (= iat + ttl), iss, aud (a single string),
/// typ = "access".
pub fn issue_access_token(settings: &TokenSettings, user_id: &str, session_id: &str, now_ms: u64) -> String {
    let issued_at = time(now_ms / 1000);
    let custom =
        IssuedClaims { sub: user_id, sid: session_id, iss: settings.issuer, aud: settings.audience, typ: ACCESS_TYPE };
    let mut claims = Claims::new(custom);
    claims.expiration =
        Some(issued_at.checked_add_signed(span(settings.access_ttl_seconds)).unwrap_or(DateTime::<Utc>::MAX_UTC));
    claims.not_before = Some(issued_at);
    claims.issued_at = Some(issued_at);
    let header = Header::empty().with_token_type("JWT");
    // Only strings and integers are serialized, which cannot fail; an empty token would
    // simply not verify.
    Hs256.token(&header, &claims, &Hs256Key::new(settings.secret)).unwrap_or_default()
}

/// Verifies: length <= MAX_TOKEN_LEN; then jwt-compact checks three base64url segments and the
/// header's shape; then no `crit` in the header; then jwt-compact checks alg exactly HS256 and
/// the HMAC (constant-time); then ours: exp (required,
/// leeway applied), nbf (optional, leeway applied), iss, aud (a string or an array containing
/// it), typ == "access", non-empty sub and sid, and iat present.
pub fn verify_access_token(settings: &TokenSettings, token: &str, now_ms: u64) -> Result<AccessClaims, TokenError> {
    use TokenError::*;
    ensure(token.len() <= MAX_TOKEN_LEN, TooLong)?;
    let untrusted = UntrustedToken::<ExtraHeader>::try_from(token).map_err(|_| Malformed)?;
    ensure(!untrusted.header().other_fields.crit.0, CriticalHeader)?;
    let key = Hs256Key::new(settings.secret);
    let verified = Hs256.validator::<PresentedClaims>(&key).validate(&untrusted).map_err(|e| match e {
        ValidationError::AlgorithmMismatch { .. } => WrongAlgorithm,
        ValidationError::InvalidSignatureLen { .. }
        | ValidationError::MalformedSignature(_)
        | ValidationError::InvalidSignature => BadSignature,
        _ => Malformed,
    })?;
    let claims = verified.claims();

    let now = time(now_ms / 1000);
    let options = TimeOptions::new(span(settings.leeway_seconds), move || now);
    claims.validate_expiration(&options).map_err(|e| match e {
        ValidationError::Expired => Expired,
        _ => MissingClaim,
    })?;
    // Not jwt-compact's maturity check: it subtracts the leeway unchecked, which panics for a
    // signed but extreme nbf.
    if let Some(nbf) = claims.not_before {
        let earliest = nbf.checked_sub_signed(options.leeway).unwrap_or(DateTime::<Utc>::MIN_UTC);
        ensure((options.clock_fn)() >= earliest, NotYetValid)?;
    }

    let custom = &claims.custom;
    ensure(custom.iss.as_deref() == Some(settings.issuer), WrongIssuer)?;
    let audience_ok = match &custom.aud {
        Some(Value::String(aud)) => aud == settings.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(settings.audience)),
        _ => false,
    };
    ensure(audience_ok, WrongAudience)?;
    ensure(custom.typ.as_deref() == Some(ACCESS_TYPE), WrongType)?;
    let non_empty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned).ok_or(MissingClaim);
    let (user_id, session_id) = (non_empty(&custom.sub)?, non_empty(&custom.sid)?);
    let issued_at = claims.issued_at.ok_or(MissingClaim)?;
    let expires_at = claims.expiration.ok_or(MissingClaim)?;
    Ok(AccessClaims {
        user_id,
        session_id,
        issued_at: u64::try_from(issued_at.timestamp()).map_err(|_| Malformed)?,
        expires_at: u64::try_from(expires_at.timestamp()).map_err(|_| Malformed)?,
    })
}

fn ensure(ok: bool, err: TokenError) -> Result<(), TokenError> {
    ok.then_some(()).ok_or(err)
}

#[cfg(test)]
mod tests {
    use super::TokenError::*;
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
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
        B64.encode(json.to_string())
    }

    fn sign<M: Mac + KeyInit>(header: &Value, payload: &Value, secret: &[u8]) -> String {
        let signed = format!("{}.{}", b64(header), b64(payload));
        let mut mac = <M as KeyInit>::new_from_slice(secret).expect("any key length");
        mac.update(signed.as_bytes());
        let signature = B64.encode(mac.finalize().into_bytes());
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

    /// A token made by jwt-compact directly (not through `issue_access_token`) with these
    /// claims besides exp, nbf and iat, signed with `secret`.
    fn foreign(custom: Value, secret: &[u8]) -> String {
        use jwt_compact::{alg::Hs256Key, Claims, Header};
        let mut claims = Claims::new(custom);
        claims.expiration = DateTime::from_timestamp(NOW as i64 + 900, 0);
        claims.not_before = DateTime::from_timestamp(NOW as i64, 0);
        claims.issued_at = claims.not_before;
        Hs256.token(&Header::empty().with_token_type("JWT"), &claims, &Hs256Key::new(secret)).expect("signs")
    }

    fn our_claims() -> Value {
        json!({"sub": "u1", "sid": "s1", "iss": "edgechat", "aud": "edgechat", "typ": "access"})
    }

    #[test]
    fn issued_tokens_are_standard_jwts_and_standard_jwts_with_our_claims_verify() {
        let token = issue();
        let header = B64.decode(token.split('.').next().expect("a header")).expect("base64url");
        assert_eq!(header, br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims: Value = serde_json::from_slice(&B64.decode(token.split('.').nth(1).expect("claims")).expect("b64"))
            .expect("JSON claims");
        let expected = json!({"exp": NOW + 900, "nbf": NOW, "iat": NOW, "sub": "user-1", "sid": "sess-1",
                              "iss": "edgechat", "aud": "edgechat", "typ": "access"});
        assert_eq!(claims, expected);
        let claims = verify(&foreign(our_claims(), SECRET)).expect("a standard HS256 JWT verifies");
        assert_eq!((claims.user_id.as_str(), claims.expires_at), ("u1", NOW + 900));
    }

    #[test]
    fn a_token_signed_with_another_key_is_a_bad_signature() {
        let other = TokenSettings { secret: b"another-secret-of-at-least-32-bytes", ..SETTINGS };
        let token = issue_access_token(&other, "user-1", "sess-1", NOW_MS);
        assert!(verify_access_token(&other, &token, NOW_MS).is_ok());
        assert_eq!(verify(&token), Err(BadSignature));
        assert_eq!(verify(&foreign(our_claims(), b"another-secret-of-at-least-32-bytes")), Err(BadSignature));
        // A key that is a prefix of ours is another key.
        assert_eq!(verify(&foreign(our_claims(), &SECRET[..32])), Err(BadSignature));
    }

    #[test]
    fn an_alg_none_token_is_refused_with_or_without_a_signature() {
        let payload = b64(&good_payload());
        let real = issue();
        let real_signature = real.rsplit_once('.').map_or("", |(_, s)| s);
        for alg in ["none", "None", "NONE", "hs256", "HS256 "] {
            let header = b64(&json!({"alg": alg, "typ": "JWT"}));
            for signature in ["", real_signature] {
                let token = format!("{header}.{payload}.{signature}");
                assert_eq!(verify(&token), Err(WrongAlgorithm), "{token}");
            }
        }
        let no_alg = format!("{}.{payload}.", b64(&json!({"typ": "JWT"})));
        assert_eq!(verify(&no_alg), Err(Malformed));
    }

    #[test]
    fn a_wrong_or_missing_type_audience_or_issuer_is_refused_even_with_our_key() {
        let with = |key: &str, value: Value| {
            let mut claims = our_claims();
            match value {
                Value::Null => claims.as_object_mut().map(|o| o.remove(key)),
                value => claims.as_object_mut().map(|o| o.insert(key.into(), value)),
            };
            verify(&foreign(claims, SECRET))
        };
        assert_eq!(with("typ", json!("refresh")), Err(WrongType));
        assert_eq!(with("typ", json!("Access")), Err(WrongType));
        assert_eq!(with("typ", Value::Null), Err(WrongType));
        assert_eq!(with("aud", json!("edgechat-admin")), Err(WrongAudience));
        assert_eq!(with("aud", json!(5)), Err(WrongAudience));
        assert_eq!(with("aud", Value::Null), Err(WrongAudience));
        assert_eq!(with("iss", json!("https://evil.example")), Err(WrongIssuer));
        assert_eq!(with("iss", Value::Null), Err(WrongIssuer));
        assert_eq!(with("sid", json!("")), Err(MissingClaim));
        assert_eq!(with("sid", json!(7)), Err(Malformed));
        let other_issuer = TokenSettings { issuer: "someone-else", ..SETTINGS };
        assert_eq!(verify(&issue_access_token(&other_issuer, "u", "s", NOW_MS)), Err(WrongIssuer));
        let other_audience = TokenSettings { audience: "another-app", ..SETTINGS };
        assert_eq!(verify(&issue_access_token(&other_audience, "u", "s", NOW_MS)), Err(WrongAudience));
    }

    #[test]
    fn expired_beyond_the_leeway_or_not_yet_valid_is_refused_to_the_second() {
        let token = issue();
        let at_ms = |ms: u64| verify_access_token(&SETTINGS, &token, ms);
        assert!(at_ms((NOW + 900 + LEEWAY) * 1000 + 999).is_ok(), "the last second of the leeway");
        assert_eq!(at_ms((NOW + 900 + LEEWAY + 1) * 1000), Err(Expired));
        assert_eq!(at_ms(u64::MAX), Err(Expired));
        let strict = TokenSettings { leeway_seconds: 0, ..SETTINGS };
        assert_eq!(verify_access_token(&strict, &token, (NOW + 901) * 1000), Err(Expired));
        // Issued 31 s in the future (a clock ahead of ours): not yet valid, however long it lives.
        let ahead = issue_access_token(&SETTINGS, "u", "s", (NOW + LEEWAY + 1) * 1000);
        assert_eq!(verify(&ahead), Err(NotYetValid));
        assert!(verify(&issue_access_token(&SETTINGS, "u", "s", (NOW + LEEWAY) * 1000)).is_ok());
        assert_eq!(
            verify_access_token(&strict, &issue_access_token(&strict, "u", "s", NOW_MS + 1000), NOW_MS),
            Err(NotYetValid)
        );
    }

    #[test]
    fn a_crit_header_is_refused_even_when_signed_with_our_key() {
        let signed = |header: &Value| sign::<Hmac<Sha256>>(header, &good_payload(), SECRET);
        for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("exp"), Value::Null] {
            let token = signed(&json!({"alg": "HS256", "typ": "JWT", "crit": crit, "exp": NOW + 900, "b64": true}));
            assert_eq!(verify(&token), Err(CriticalHeader), "crit: {crit}");
        }
        // Other unknown header fields are ignored, as RFC 7515 asks.
        assert!(verify(&signed(&json!({"alg": "HS256", "typ": "JWT", "x-extra": ["exp"]}))).is_ok());
        assert_eq!(CriticalHeader.as_str(), "critical_header");
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
