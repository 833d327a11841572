//! Stripe webhooks: `Stripe-Signature` verification, event parsing, and the plan a subscription gives.

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;

/// Largest accepted gap, in either direction, between a signature's timestamp and now.
pub const TOLERANCE_SECONDS: u64 = 300;
/// Longest `Stripe-Signature` header looked at; longer ones are malformed.
pub const MAX_HEADER_LEN: usize = 4096;

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    TimestampOutOfTolerance,
    NoMatch,
}

impl SignatureError {
    /// The machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed => "malformed_signature",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Self::NoMatch => "invalid_signature",
        }
    }

    /// A short human-readable explanation.
    pub fn message(&self) -> &'static str {
        match self {
            Self::Missing => "The Stripe-Signature header is missing.",
            Self::Malformed => "The Stripe-Signature header is malformed.",
            Self::TimestampOutOfTolerance => "The Stripe-Signature timestamp is too far from the current time.",
            Self::NoMatch => "No signature in the Stripe-Signature header matches the body.",
        }
    }
}

/// The HMAC-SHA256 of `"{t}.{body}"` keyed with the whole secret string (`whsec_` prefix
/// included), ready to finalize or verify. (HMAC takes a key of any length: never `None`.)
fn v1_mac(body: &[u8], secret: &str, timestamp: u64) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The 32 bytes a `v1` value spells in lowercase hex (as Stripe sends it), or `None`.
fn v1_bytes(value: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let hex = value.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Verifies a `Stripe-Signature` header (`t=<unix seconds>,v1=<hex>[,v1=...]`, items in any
/// order, unknown schemes such as `v0` ignored) over the raw body and returns its timestamp.
///
/// Like Stripe's libraries, the signature is checked before the timestamp tolerance, so a
/// stale but authentic delivery reports `TimestampOutOfTolerance` and a forged one `NoMatch`.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now_seconds: u64,
) -> Result<u64, SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for (key, value) in header.split(',').filter_map(|item| item.split_once('=')) {
        match key.trim() {
            "t" if timestamp.is_some() => return Err(SignatureError::Malformed),
            "t" => timestamp = Some(value.trim().parse::<u64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(value.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.filter(|_| !candidates.is_empty()).ok_or(SignatureError::Malformed)?;
    let mac = v1_mac(body, secret, timestamp).ok_or(SignatureError::NoMatch)?;
    // Every candidate is checked (in constant time), so timing does not reveal which matched.
    let matched = candidates
        .iter()
        .fold(false, |acc, c| acc | v1_bytes(c).is_some_and(|tag| mac.clone().verify_slice(&tag).is_ok()));
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    if now_seconds.abs_diff(timestamp) > TOLERANCE_SECONDS {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    Ok(timestamp)
}

/// A helper for tests and tools: the `Stripe-Signature` value Stripe would send.
pub fn sign(body: &[u8], secret: &str, timestamp: u64) -> String {
    let tag = v1_mac(body, secret, timestamp).map(|mac| crate::request_id::hex(&mac.finalize().into_bytes()));
    format!("t={timestamp},v1={}", tag.unwrap_or_default())
}

/// A Stripe event edgechat acts on; every other type parses as `Action::Ignored` (and is
/// still recorded so deliveries are processed exactly once).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_...`
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: u64,
    pub action: Action,
}

/// What an event asks edgechat to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// checkout.session.completed: link a customer to a user (client_reference_id, else metadata.user_id).
    LinkCustomer {
        customer_id: String,
        user_id: String,
    },
    /// customer.subscription.created|updated|deleted: the subscription's state. For deleted, status is "canceled".
    Subscription {
        customer_id: String,
        subscription_id: String,
        status: String,
        current_period_end: Option<u64>,
        /// `items.data[0].price.id`
        price_id: Option<String>,
        /// `metadata.plan` on the subscription, else `items.data[0].price.lookup_key`.
        plan_hint: Option<String>,
        /// The event's `created`.
        updated_at: u64,
    },
    /// invoice.payment_failed: the customer's subscription is past due.
    PaymentFailed {
        customer_id: String,
    },
    Ignored,
}

/// The answer to a delivery: `{"received": true, "duplicate": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub received: bool,
    /// True when the event had already been processed.
    pub duplicate: bool,
}

impl Receipt {
    /// The receipt for an event, as JSON text.
    pub fn json(duplicate: bool) -> String {
        // Two booleans always serialize.
        serde_json::to_string(&Receipt { received: true, duplicate }).unwrap_or_default()
    }
}

/// The envelope of every event. `data.object` stays unparsed until the type says which
/// object it is, so an ignored type's object is never read. Each member is optional here so
/// that a missing one is reported by name.
#[derive(Deserialize)]
struct Envelope<'a> {
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    created: Option<u64>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    object: Option<&'a RawValue>,
}

/// A reference to another object: its id, or the object itself when expanded.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: Option<String> },
}

impl Expandable {
    fn id(self) -> Option<String> {
        match self {
            Self::Id(id) | Self::Object { id: Some(id) } => non_empty(id),
            Self::Object { id: None } => None,
        }
    }
}

#[derive(Deserialize)]
struct Metadata {
    user_id: Option<String>,
    plan: Option<String>,
}

#[derive(Deserialize)]
struct CheckoutSession {
    customer: Option<Expandable>,
    client_reference_id: Option<String>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Subscription {
    id: Option<String>,
    customer: Option<Expandable>,
    status: Option<String>,
    current_period_end: Option<u64>,
    metadata: Option<Metadata>,
    items: Option<List<SubscriptionItem>>,
}

#[derive(Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
struct SubscriptionItem {
    /// Newer API versions carry the period on the item rather than the subscription.
    current_period_end: Option<u64>,
    price: Option<Price>,
}

#[derive(Deserialize)]
struct Price {
    id: Option<String>,
    lookup_key: Option<String>,
}

#[derive(Deserialize)]
struct Invoice {
    customer: Option<Expandable>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Why a JSON text did not read as the object wanted.
enum Unreadable {
    NotJson,
    NotObject,
    /// A member of another type than Stripe documents.
    Unexpected,
}

/// `text` read as `T`, which must be a JSON object (serde's derives would take an array too).
fn read_object<'a, T: Deserialize<'a>>(text: &'a [u8]) -> Result<T, Unreadable> {
    use serde_json::error::Category;
    let is_object = text.trim_ascii_start().starts_with(b"{");
    match serde_json::from_slice(text).map_err(|e| e.classify()) {
        Ok(value) if is_object => Ok(value),
        Err(Category::Syntax | Category::Eof | Category::Io) => Err(Unreadable::NotJson),
        Err(Category::Data) if is_object => Err(Unreadable::Unexpected),
        _ => Err(Unreadable::NotObject),
    }
}

/// `data.object` read as `T`: a missing one is an error, and so is one with a member of
/// another type than Stripe documents.
fn object<T: DeserializeOwned>(data: Option<&RawValue>, event_type: &str) -> Result<T, String> {
    let missing = || format!("{event_type} without data.object");
    let data: Data = data.map(|raw| read_object(raw.get().as_bytes())).and_then(Result::ok).ok_or_else(missing)?;
    let raw = data.object.ok_or_else(missing)?;
    read_object(raw.get().as_bytes()).map_err(|e| match e {
        Unreadable::Unexpected => format!("{event_type} with a member of an unexpected type in data.object"),
        Unreadable::NotJson | Unreadable::NotObject => missing(),
    })
}

/// Parses an event JSON body. Errors (the edge answers 400) carry a short message: body not
/// JSON, missing id/type/created, or a handled type whose `data.object` lacks what it needs.
pub fn parse_event(body: &[u8]) -> Result<Event, String> {
    let envelope: Envelope = read_object(body).map_err(|e| match e {
        Unreadable::NotJson => "body is not JSON".to_owned(),
        Unreadable::NotObject => "event is not a JSON object".to_owned(),
        Unreadable::Unexpected => "event has a member of an unexpected type".to_owned(),
    })?;
    let id = envelope.id.and_then(non_empty).ok_or("event has no id")?;
    let event_type = envelope.event_type.and_then(non_empty).ok_or("event has no type")?;
    let created = envelope.created.ok_or("event has no created")?;
    let need = |what: &str| format!("{event_type} without {what}");
    let action = match event_type.as_str() {
        "checkout.session.completed" => {
            let o: CheckoutSession = object(envelope.data, &event_type)?;
            let customer_id = o.customer.and_then(Expandable::id).ok_or_else(|| need("customer"))?;
            let user_id = o
                .client_reference_id
                .and_then(non_empty)
                .or_else(|| o.metadata.and_then(|m| m.user_id).and_then(non_empty))
                .ok_or_else(|| need("a user reference"))?;
            Action::LinkCustomer { customer_id, user_id }
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            let o: Subscription = object(envelope.data, &event_type)?;
            let item = o.items.and_then(|items| items.data.into_iter().next());
            let (item_period_end, price) = item.map_or((None, None), |i| (i.current_period_end, i.price));
            let (price_id, lookup_key) = price.map_or((None, None), |p| (p.id, p.lookup_key));
            let status = if event_type.ends_with(".deleted") {
                "canceled".to_owned()
            } else {
                o.status.and_then(non_empty).ok_or_else(|| need("status"))?
            };
            Action::Subscription {
                customer_id: o.customer.and_then(Expandable::id).ok_or_else(|| need("customer"))?,
                subscription_id: o.id.and_then(non_empty).ok_or_else(|| need("id"))?,
                status,
                current_period_end: o.current_period_end.or(item_period_end),
                price_id: price_id.and_then(non_empty),
                plan_hint: o
                    .metadata
                    .and_then(|m| m.plan)
                    .and_then(non_empty)
                    .or_else(|| lookup_key.and_then(non_empty)),
                updated_at: created,
            }
        }
        "invoice.payment_failed" => {
            let o: Invoice = object(envelope.data, &event_type)?;
            Action::PaymentFailed { customer_id: o.customer.and_then(Expandable::id).ok_or_else(|| need("customer"))? }
        }
        _ => Action::Ignored,
    };
    Ok(Event { id, event_type, created, action })
}

/// The plan a subscription gives. For active, trialing and past_due: the plan `price_plans`
/// (price id -> plan name, from config) names for `price_id`, else `plan_hint`, else `None`
/// (unknown price: the caller keeps the current plan and logs). Any other status: `"free"`.
pub fn plan_for(
    status: &str,
    price_id: Option<&str>,
    plan_hint: Option<&str>,
    price_plans: &[(String, String)],
) -> Option<String> {
    if !matches!(status, "active" | "trialing" | "past_due") {
        return Some("free".to_owned());
    }
    price_id
        .and_then(|p| price_plans.iter().find(|(price, _)| price == p))
        .map(|(_, plan)| plan.clone())
        .or_else(|| plan_hint.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"ping","created":1700000000}"#;
    const T: u64 = 1_700_000_000;

    fn verify(header: &str, body: &[u8], now: u64) -> Result<u64, SignatureError> {
        verify_signature(Some(header), body, SECRET, now)
    }

    fn good_v1() -> String {
        sign(BODY, SECRET, T).split_once(",v1=").unwrap().1.to_owned()
    }

    #[test]
    fn a_signature_made_by_sign_verifies_in_any_layout() {
        let (v1, zeros) = (good_v1(), "0".repeat(64));
        assert_eq!(verify(&sign(BODY, SECRET, T), BODY, T), Ok(T));
        assert_eq!(verify(&format!("t={T},v1={zeros},v1={v1},v1=abc"), BODY, T), Ok(T));
        assert_eq!(verify(&format!(" v0 = deadbeef , v1= {v1} ,  t = {T} , x=1"), BODY, T), Ok(T));
    }

    #[test]
    fn a_known_vector_computed_directly_with_hmac_sha256_verifies() {
        use hmac::{Hmac, Mac};
        use sha2::Sha256;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test_secret").unwrap();
        mac.update(b"1700000000.");
        mac.update(BODY);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let h = format!("t=1700000000,v1={hex}");
        assert_eq!(h, sign(BODY, SECRET, T));
        assert_eq!(verify(&h, BODY, T), Ok(T));
    }

    #[test]
    fn a_changed_body_or_a_secret_without_its_prefix_does_not_match() {
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(verify(&sign(BODY, SECRET, T), &body, T), Err(SignatureError::NoMatch));
        assert_eq!(verify(&sign(BODY, "test_secret", T), BODY, T), Err(SignatureError::NoMatch));
        assert_eq!(verify(&format!("t={T},v0={}", good_v1()), BODY, T), Err(SignatureError::Malformed));
    }

    #[test]
    fn one_wrong_and_one_right_v1_verify_in_either_order_but_only_exact_lowercase_tags_match() {
        let v1 = good_v1();
        let wrong = sign(BODY, "whsec_other", T).split_once(",v1=").unwrap().1.to_owned();
        assert_eq!(verify(&format!("t={T},v1={wrong},v1={v1}"), BODY, T), Ok(T));
        assert_eq!(verify(&format!("t={T},v1={v1},v1={wrong}"), BODY, T), Ok(T));
        assert_eq!(verify(&format!("t={T},v1={wrong},v1={wrong}"), BODY, T), Err(SignatureError::NoMatch));
        // A right tag under another scheme, spelled in capitals, cut short or extended is no match.
        for other in [format!("v0={v1},v1={wrong}"), format!("v1={}", v1.to_uppercase()), format!("v1={}", &v1[..62])] {
            assert_eq!(verify(&format!("t={T},{other}"), BODY, T), Err(SignatureError::NoMatch), "{other}");
        }
        assert_eq!(verify(&format!("t={T},v1={v1}00"), BODY, T), Err(SignatureError::NoMatch));
    }

    #[test]
    fn timestamps_more_than_300_seconds_away_are_out_of_tolerance() {
        let h = sign(BODY, SECRET, T);
        for now in [T + 301, T - 301] {
            assert_eq!(verify(&h, BODY, now), Err(SignatureError::TimestampOutOfTolerance));
        }
        for now in [T + 300, T - 300] {
            assert_eq!(verify(&h, BODY, now), Ok(T));
        }
        // The signature is checked first, so a forged stale header is reported as forged.
        assert_eq!(verify(&format!("t={T},v1={}", "0".repeat(64)), BODY, T + 10_000), Err(SignatureError::NoMatch));
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(verify_signature(None, BODY, SECRET, T), Err(SignatureError::Missing));
        assert_eq!(verify("  ", BODY, T).map_err(|e| e.code()), Err("missing_signature"));
        let long = format!("t={T},v1={}", "a".repeat(5 * 1024));
        for h in ["t=abc,v1=00", "v1=00", "t=1", "garbage", "t=-5,v1=00", "t=1,t=2,v1=00", long.as_str()] {
            assert_eq!(verify(h, BODY, T).map_err(|e| e.code()), Err("malformed_signature"), "{h}");
        }
    }

    fn event(kind: &str, object: &str) -> String {
        format!(
            r#"{{"id":"evt_1NabC","object":"event","api_version":"2024-06-20","created":1700000100,"livemode":false,"type":"{kind}","data":{{"object":{object}}}}}"#
        )
    }

    fn action(kind: &str, object: &str) -> Action {
        parse_event(event(kind, object).as_bytes()).unwrap().action
    }

    const SUB: &str = r#"{"id":"sub_1","object":"subscription","customer":"cus_9","status":"active","current_period_end":1702592000,"metadata":{},"items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro_m","lookup_key":"pro_monthly","unit_amount":2000}}]}}"#;

    #[test]
    fn a_completed_checkout_links_the_client_reference_else_metadata_user_id() {
        let o = r#"{"id":"cs_1","object":"checkout.session","client_reference_id":"usr_1","customer":"cus_9","metadata":{"user_id":"usr_other"},"mode":"subscription","subscription":"sub_1"}"#;
        let e = parse_event(event("checkout.session.completed", o).as_bytes()).unwrap();
        assert_eq!(
            (e.id.as_str(), e.event_type.as_str(), e.created),
            ("evt_1NabC", "checkout.session.completed", 1700000100)
        );
        assert_eq!(e.action, Action::LinkCustomer { customer_id: "cus_9".into(), user_id: "usr_1".into() });
        let o = r#"{"id":"cs_1","client_reference_id":null,"customer":"cus_9","metadata":{"user_id":"usr_2"}}"#;
        let linked = Action::LinkCustomer { customer_id: "cus_9".into(), user_id: "usr_2".into() };
        assert_eq!(action("checkout.session.completed", o), linked);
    }

    #[test]
    fn subscription_events_carry_price_period_and_hint() {
        let expected = |status: &str| Action::Subscription {
            customer_id: "cus_9".into(),
            subscription_id: "sub_1".into(),
            status: status.into(),
            current_period_end: Some(1702592000),
            price_id: Some("price_pro_m".into()),
            plan_hint: Some("pro_monthly".into()),
            updated_at: 1700000100,
        };
        assert_eq!(action("customer.subscription.created", SUB), expected("active"));
        assert_eq!(action("customer.subscription.updated", SUB), expected("active"));
        assert_eq!(action("customer.subscription.deleted", SUB), expected("canceled"));
        let with_plan = SUB.replace(r#""metadata":{}"#, r#""metadata":{"plan":"team"}"#);
        let got = action("customer.subscription.updated", &with_plan);
        assert!(matches!(got, Action::Subscription { plan_hint: Some(p), .. } if p == "team"));
    }

    #[test]
    fn a_failed_payment_marks_the_customer_and_other_types_are_ignored() {
        let o = r#"{"id":"in_1","object":"invoice","customer":"cus_9","subscription":"sub_1","attempt_count":1}"#;
        assert_eq!(action("invoice.payment_failed", o), Action::PaymentFailed { customer_id: "cus_9".into() });
        assert_eq!(action("charge.succeeded", r#"{"id":"ch_1"}"#), Action::Ignored);
    }

    #[test]
    fn expanded_customers_item_periods_and_an_ignored_types_object_are_read_as_stripe_sends_them() {
        let expanded = SUB.replace(r#""customer":"cus_9""#, r#""customer":{"id":"cus_9","object":"customer"}"#);
        let got = action("customer.subscription.updated", &expanded);
        assert!(matches!(&got, Action::Subscription { customer_id, .. } if customer_id == "cus_9"), "{got:?}");
        let on_item = SUB
            .replace(r#""current_period_end":1702592000,"#, "")
            .replace(r#"{"id":"si_1","#, r#"{"id":"si_1","current_period_end":1702600000,"#);
        let got = action("customer.subscription.updated", &on_item);
        assert!(matches!(got, Action::Subscription { current_period_end: Some(1702600000), .. }), "{got:?}");
        let bare = action("customer.subscription.updated", r#"{"id":"sub_1","customer":"cus_9","status":"active"}"#);
        let expected = Action::Subscription {
            customer_id: "cus_9".into(),
            subscription_id: "sub_1".into(),
            status: "active".into(),
            current_period_end: None,
            price_id: None,
            plan_hint: None,
            updated_at: 1700000100,
        };
        assert_eq!(bare, expected);
        // The object of a type edgechat does not act on is never read.
        assert_eq!(action("charge.succeeded", r#"{"customer":5,"items":"x","metadata":[]}"#), Action::Ignored);
    }

    #[test]
    fn event_errors_say_what_is_missing_or_unexpected() {
        let err = |body: &str| parse_event(body.as_bytes()).unwrap_err();
        assert_eq!(err("not json"), "body is not JSON");
        assert_eq!(err(r#"{"id":"e","type":"x","created":1"#), "body is not JSON");
        assert_eq!(err(r#"{"type":"x","created":1}"#), "event has no id");
        assert_eq!(err(r#"{"id":"","type":"x","created":1}"#), "event has no id");
        assert_eq!(err(r#"{"id":"e","created":1}"#), "event has no type");
        assert_eq!(err(r#"{"id":"e","type":"x"}"#), "event has no created");
        assert_eq!(err(r#"{"id":"e","type":"x","created":-1}"#), "event has a member of an unexpected type");
        assert_eq!(err("[1]"), "event is not a JSON object");
        assert_eq!(err(r#"["e","x",1,null]"#), "event is not a JSON object");
        assert_eq!(err(r#"{"id":"e","type":"x","created":1} {}"#), "body is not JSON");
        let array_object = event("invoice.payment_failed", r#"[{"customer":"cus_9"}]"#);
        assert_eq!(err(&array_object), "invoice.payment_failed without data.object");
        let no_customer = event("invoice.payment_failed", r#"{"customer":null}"#);
        assert_eq!(err(&no_customer), "invoice.payment_failed without customer");
        let no_object = event("invoice.payment_failed", "null");
        assert_eq!(err(&no_object), "invoice.payment_failed without data.object");
        let odd_status = event("customer.subscription.updated", &SUB.replace(r#""status":"active""#, r#""status":7"#));
        let unexpected = "customer.subscription.updated with a member of an unexpected type in data.object";
        assert_eq!(err(&odd_status), unexpected);
    }

    #[test]
    fn malformed_events_are_errors() {
        let no_user = event("checkout.session.completed", r#"{"customer":"cus_9","metadata":{}}"#);
        let no_customer = event("checkout.session.completed", r#"{"client_reference_id":"usr_1","customer":null}"#);
        let no_object = event("invoice.payment_failed", "null");
        let bad: [&[u8]; 7] = [
            b"not json",
            br#"{"type":"x","created":1}"#,
            br#"{"id":"e","created":1}"#,
            br#"{"id":"e","type":"x"}"#,
            no_user.as_bytes(),
            no_customer.as_bytes(),
            no_object.as_bytes(),
        ];
        for body in bad {
            assert!(parse_event(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_receipt_says_received_and_whether_it_was_a_duplicate() {
        assert_eq!(Receipt::json(false), r#"{"received":true,"duplicate":false}"#);
        assert_eq!(Receipt::json(true), r#"{"received":true,"duplicate":true}"#);
    }

    #[test]
    fn plan_for_follows_status_then_config_then_hint() {
        let plans = vec![("price_pro_m".to_owned(), "pro".to_owned())];
        let plan = |s, p, h| plan_for(s, p, h, &plans);
        assert_eq!(plan("active", Some("price_pro_m"), Some("x")), Some("pro".into()));
        assert_eq!(plan("trialing", Some("price_other"), Some("team")), Some("team".into()));
        assert_eq!(plan("past_due", Some("price_other"), None), None);
        for s in ["canceled", "unpaid", "incomplete", "incomplete_expired", "paused"] {
            assert_eq!(plan(s, Some("price_pro_m"), None), Some("free".into()));
        }
    }

    #[test]
    fn pseudo_random_headers_and_bodies_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = "tv01=,. 9af-x\"{}[]:é".chars().collect::<Vec<_>>();
        let sub = event("customer.subscription.updated", SUB);
        for _ in 0..400 {
            let len = next() % 80;
            let header: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let _ = verify_signature(Some(&header), BODY, SECRET, next());
            let _ = verify_signature(Some(&format!("t={},v1={header}", next() % (2 * T))), BODY, SECRET, T);
            let mut body = sub.clone().into_bytes();
            for _ in 0..(next() % 4) {
                let i = (next() % body.len() as u64) as usize;
                body[i] = next() as u8;
            }
            body.truncate((next() % (body.len() as u64 + 1)) as usize);
            let _ = parse_event(&body);
        }
    }
}
