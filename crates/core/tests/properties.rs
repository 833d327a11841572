//! Property tests of every parser that takes untrusted input: none panics on any input, and
//! the encoders round-trip through their parsers whatever the chunking.

use edgechat_core::cursor::Cursor;
use edgechat_core::gateway::{parse_request, passthrough_body};
use edgechat_core::llm::provider::{Provider, StreamDecoder};
use edgechat_core::llm::sse::{encode_event, SseParser};
use edgechat_core::stripe::{sign, verify_signature, SignatureError};
use edgechat_core::token::{issue_access_token, verify_access_token, TokenError, TokenSettings};
use edgechat_core::{body, search};
use proptest::prelude::*;
use serde_json::Value;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn settings() -> TokenSettings<'static> {
    TokenSettings {
        secret: SECRET,
        issuer: "edgechat",
        audience: "edgechat",
        access_ttl_seconds: 900,
        leeway_seconds: 30,
    }
}

/// Arbitrary JSON values, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Feeds `bytes` to a parser cut at `cuts` (positions modulo the length).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| if bytes.is_empty() { 0 } else { c % bytes.len() }).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(bytes[start..p.max(start)].to_vec());
        start = p.max(start);
    }
    out.push(bytes[start..].to_vec());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_sse_parser_and_stream_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut parser = SseParser::new();
        for c in chunks(&bytes, &cuts) {
            parser.feed(&c);
        }
        parser.finish();
        for provider in [Provider::OpenAi, Provider::Anthropic, Provider::WorkersAi] {
            let mut d = StreamDecoder::new(provider);
            for c in chunks(&bytes, &cuts) {
                d.feed(&c);
            }
            d.finish();
        }
    }

    #[test]
    fn encoded_events_parse_back_identically_however_they_are_split(
        name in "[a-z]{1,10}", id in 1u64..1_000_000, data in "[^\r\n]{0,40}(\n[^\r\n]{0,40}){0,3}",
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let bytes = encode_event(&name, id, &data).into_bytes();
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for c in chunks(&bytes, &cuts) {
            events.extend(parser.feed(&c));
        }
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(events[0].event.as_deref(), Some(name.as_str()));
        prop_assert_eq!(&events[0].data, &data);
        prop_assert_eq!(events[0].id.clone(), Some(id.to_string()));
    }

    #[test]
    fn stripe_signatures_never_panic_and_real_ones_verify(header in ".{0,300}", body in prop::collection::vec(any::<u8>(), 0..300), t in 0u64..4_000_000_000) {
        let _ = verify_signature(Some(&header), &body, "whsec_x", t);
        let signed = sign(&body, "whsec_test", t);
        prop_assert_eq!(verify_signature(Some(&signed), &body, "whsec_test", t), Ok(t));
        prop_assert!(verify_signature(Some(&signed), &body, "whsec_other", t).is_err());
    }

    #[test]
    fn access_tokens_never_panic_and_round_trip(garbage in ".{0,400}", user in "usr_[A-Za-z0-9_-]{22}", sid in "ses_[A-Za-z0-9_-]{22}", now in 1_000_000_000_000u64..4_000_000_000_000) {
        let _ = verify_access_token(&settings(), &garbage, now);
        let token = issue_access_token(&settings(), &user, &sid, now);
        let claims = verify_access_token(&settings(), &token, now).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(claims.user_id, user);
        prop_assert_eq!(claims.session_id, sid);
        prop_assert!(verify_access_token(&settings(), &token, now + 3_600_000).is_err());
    }

    #[test]
    fn a_token_verifies_only_under_the_key_it_was_signed_with(other in prop::collection::vec(any::<u8>(), 32..80), now in 1_000_000_000_000u64..4_000_000_000_000) {
        prop_assume!(other.as_slice() != SECRET);
        let foreign = TokenSettings { secret: &other, ..settings() };
        let token = issue_access_token(&foreign, "usr_1", "ses_1", now);
        prop_assert!(verify_access_token(&foreign, &token, now).is_ok());
        prop_assert_eq!(verify_access_token(&settings(), &token, now), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_stripe_header_verifies_when_any_one_of_its_v1_tags_is_right(wrong in prop::collection::vec("[0-9a-f]{64}", 0..4), at in any::<usize>(), body in prop::collection::vec(any::<u8>(), 0..100), t in 0u64..4_000_000_000) {
        let right = sign(&body, "whsec_test", t).split_once(",v1=").map(|(_, v1)| v1.to_owned()).unwrap_or_default();
        prop_assume!(!wrong.contains(&right));
        let only_wrong = wrong.iter().map(|v1| format!(",v1={v1}")).collect::<String>();
        let mut tags = wrong.clone();
        tags.insert(at % (wrong.len() + 1), right);
        let with_right = tags.iter().map(|v1| format!(",v1={v1}")).collect::<String>();
        prop_assert_eq!(verify_signature(Some(&format!("t={t}{with_right}")), &body, "whsec_test", t), Ok(t));
        if !wrong.is_empty() {
            let refused = verify_signature(Some(&format!("t={t}{only_wrong}")), &body, "whsec_test", t);
            prop_assert_eq!(refused, Err(SignatureError::NoMatch));
        }
    }

    #[test]
    fn cursors_never_panic_and_round_trip(garbage in ".{0,200}", key in any::<i64>(), id in "[A-Za-z0-9_-]{1,64}") {
        let _ = Cursor::decode(&garbage);
        let c = Cursor { key, id };
        prop_assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
    }

    #[test]
    fn request_json_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), value in json()) {
        let _ = parse_request(&bytes);
        let _ = parse_request(value.to_string().as_bytes());
        let _ = body::parse_json::<edgechat_core::accounts::RegisterRequest>(Some("application/json"), &bytes);
        let _ = body::parse_json::<edgechat_core::conversations::CreateConversation>(Some("application/json"), value.to_string().as_bytes());
        let _ = edgechat_core::stripe::parse_event(value.to_string().as_bytes());
    }

    #[test]
    fn any_extra_member_reaches_the_upstream_as_sent(value in json(), spaced in any::<bool>()) {
        let text = if spaced { serde_json::to_string_pretty(&value).unwrap() } else { value.to_string() };
        let body = format!(r#"{{"model":"m","extra":{text},"messages":[{{"role":"user","content":"hi"}}]}}"#);
        let req = parse_request(body.as_bytes()).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(passthrough_body(&req, "m"), body);
    }

    #[test]
    fn search_queries_are_safe_or_refused(q in ".{0,250}") {
        if let Ok(fts) = search::fts_query(&q) {
            // Every term is a double-quoted string; only the last may carry a `*`.
            let mut rest = fts.as_str();
            while !rest.is_empty() {
                prop_assert!(rest.starts_with('"'), "{}", fts);
                let mut i = 1;
                let b = rest.as_bytes();
                loop {
                    prop_assert!(i < b.len(), "unterminated: {}", fts);
                    if b[i] == b'"' {
                        if i + 1 < b.len() && b[i + 1] == b'"' { i += 2; continue; }
                        break;
                    }
                    i += 1;
                }
                rest = &rest[i + 1..];
                rest = rest.strip_prefix('*').unwrap_or(rest);
                if !rest.is_empty() {
                    prop_assert!(rest.starts_with(' '), "{}", fts);
                    rest = &rest[1..];
                }
            }
        }
    }
}
