//! Plans and their limits (requests per minute, tokens per day, concurrent streams, choices
//! per request, allowed models), the admission decision over a request's counts, and the window arithmetic and
//! headers of rate-limited answers.

use crate::body::{parse_config, Entries};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// Plans used when `PLANS` is unset.
pub const DEFAULT_PLANS: &str = r#"{
  "free": {"requests_per_minute": 20, "tokens_per_day": 100000, "concurrent_streams": 2, "models": ["*"]},
  "pro": {"requests_per_minute": 120, "tokens_per_day": 2000000, "concurrent_streams": 8, "models": ["*"]}}"#;

/// The plan every user starts on, and falls back to when theirs is not configured.
pub const FREE: &str = "free";

/// A plan's limits as `PLANS` gives them (under the plan's name) and as `GET /usage` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object of limits")]
pub struct Plan {
    #[serde(skip_deserializing)]
    pub name: String,
    pub requests_per_minute: u32,
    pub tokens_per_day: u64,
    pub concurrent_streams: u32,
    /// The most choices (`n`) one gateway request may ask for; 1 when unset.
    #[serde(default = "one")]
    pub max_n: u32,
    /// Model names this plan may use; `"*"` allows all.
    pub models: Vec<String>,
}

fn one() -> u32 {
    1
}

/// The minute's request count after one more request was counted (a `RETURNING` row).
#[derive(Debug, Deserialize)]
pub struct RequestCount {
    pub request_count: u64,
}

/// The tokens counted for a user's day.
#[derive(Debug, Deserialize)]
pub struct DayTokens {
    pub tokens: u64,
}

impl Plan {
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == "*" || m == model)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    /// In configuration order, names unique (they were a JSON object's).
    plans: Vec<Plan>,
}

impl Plans {
    /// Parses `PLANS`: an object of plan name -> limits; must define `free`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let Entries(raw) = parse_config::<Entries<Plan>>(json)?;
        if !raw.iter().any(|(name, _)| name == FREE) {
            return Err("must define a \"free\" plan".into());
        }
        let mut plans = Vec::with_capacity(raw.len());
        for (name, mut plan) in raw {
            if name.is_empty()
                || name.len() > 50
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!("plan name \"{name}\" must be 1 to 50 letters, digits, _ or -"));
            }
            if plan.requests_per_minute == 0 || plan.concurrent_streams == 0 || plan.max_n == 0 {
                return Err(format!("plan {name}: limits must be at least 1"));
            }
            plan.name = name;
            plans.push(plan);
        }
        Ok(Self { plans })
    }

    /// The named plan, or `free` when the name is not configured.
    pub fn get(&self, name: &str) -> &Plan {
        self.find(name).or_else(|| self.find(FREE)).unwrap_or_else(|| unreachable!("parse requires free"))
    }

    fn find(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The plan names in configuration order.
    pub fn names(&self) -> Vec<&str> {
        self.plans.iter().map(|p| p.name.as_str()).collect()
    }
}

/// What the counting statements found for one request. The statements count and take
/// conditionally (the day's reservation and the stream slot only for a request the minute
/// admitted); the decision is [`decide`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// The minute's requests with this one; `None` when nothing was counted (the
    /// credential's gate refused the statements).
    pub requests_this_minute: Option<u64>,
    /// The request's estimate was reserved from the day's budget.
    pub tokens_reserved: bool,
    /// For a streaming call, whether it took a stream slot; `None` for one that does not stream.
    pub stream_slot: Option<bool>,
}

/// A plan limit a request can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    RequestsPerMinute,
    TokensPerDay,
    ConcurrentStreams,
}

/// Whether a request is admitted, and for a refused one what the counting took that must be
/// given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admitted,
    Refused { limit: Limit, release_stream: bool, return_tokens: bool },
}

/// Admits a request from its counts under `plan`: the minute first, then the day's tokens,
/// then (for a stream) a slot.
pub fn decide(counts: Counts, plan: &Plan) -> Decision {
    let refused = |limit, release_stream, return_tokens| Decision::Refused { limit, release_stream, return_tokens };
    let in_minute = counts.requests_this_minute.is_some_and(|n| n <= u64::from(plan.requests_per_minute));
    let slot = counts.stream_slot.unwrap_or(false);
    if !in_minute {
        // Nothing else was taken for a request the minute refused, whatever the counts say.
        return refused(Limit::RequestsPerMinute, false, false);
    }
    if !counts.tokens_reserved {
        return refused(Limit::TokensPerDay, slot, false);
    }
    if counts.stream_slot == Some(false) {
        return refused(Limit::ConcurrentStreams, false, true);
    }
    Decision::Admitted
}

impl Limit {
    /// The 429 for a request refused on this limit at `now_ms` (having asked to reserve
    /// `reserved` tokens), with `Retry-After` and `RateLimit-*` headers.
    pub fn refusal(self, plan: &Plan, now_ms: u64, reserved: u64) -> ApiError {
        let name = &plan.name;
        let (code, message, limit, reset) = match self {
            Limit::RequestsPerMinute => {
                let rpm = u64::from(plan.requests_per_minute);
                let message = format!("at most {rpm} requests per minute on the {name} plan");
                ("rate_limited", message, rpm, minute_window(now_ms).1)
            }
            Limit::TokensPerDay => {
                let message = format!(
                    "this request may use up to {reserved} tokens, more than is left of the daily budget of {} tokens on the {name} plan",
                    plan.tokens_per_day
                );
                ("token_budget_exceeded", message, plan.tokens_per_day, day_window(now_ms).1)
            }
            Limit::ConcurrentStreams => {
                let streams = u64::from(plan.concurrent_streams);
                ("too_many_streams", format!("at most {streams} streams at once on the {name} plan"), streams, 1)
            }
        };
        let mut err = ApiError::new(429, code, message);
        err.headers.extend(limit_headers(limit, 0, reset));
        err
    }
}

/// The start of the minute `now_ms` falls in, and the seconds until the next one.
pub fn minute_window(now_ms: u64) -> (u64, u64) {
    let start = now_ms - now_ms % 60_000;
    (start, (start + 60_000 - now_ms).div_ceil(1000).max(1))
}

/// The UTC day of `now_ms` (`YYYY-MM-DD`) and the seconds until it ends.
pub fn day_window(now_ms: u64) -> (String, u64) {
    let day_ms = 86_400_000;
    let start = now_ms - now_ms % day_ms;
    (crate::time::rfc3339(start)[..10].to_string(), (start + day_ms - now_ms).div_ceil(1000).max(1))
}

/// `RateLimit-*` and `Retry-After` headers for a refused request.
pub fn limit_headers(limit: u64, remaining: u64, reset_seconds: u64) -> Vec<(&'static str, String)> {
    vec![
        ("retry-after", reset_seconds.to_string()),
        ("ratelimit-limit", limit.to_string()),
        ("ratelimit-remaining", remaining.to_string()),
        ("ratelimit-reset", reset_seconds.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plans_parse_and_unknown_names_fall_back_to_free() {
        let plans = Plans::parse(DEFAULT_PLANS).unwrap();
        assert_eq!(plans.names(), vec!["free", "pro"]);
        assert_eq!(plans.get("pro").requests_per_minute, 120);
        assert_eq!(plans.get("enterprise").name, "free");
        assert!(plans.get("free").allows_model("anything"));
    }

    #[test]
    fn bad_plans_are_rejected_with_a_reason() {
        assert!(Plans::parse("{}").unwrap_err().contains("free"));
        assert!(Plans::parse("not json").is_err());
        let zero = r#"{"free":{"requests_per_minute":0,"tokens_per_day":1,"concurrent_streams":1,"models":["*"]}}"#;
        assert!(Plans::parse(zero).is_err());
        let extra = r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"models":[],"x":1}}"#;
        assert!(Plans::parse(extra).is_err());
        let no_choice =
            r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"max_n":0,"models":[]}}"#;
        assert_eq!(Plans::parse(no_choice).unwrap_err(), "plan free: limits must be at least 1");
        let fraction =
            r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"max_n":1.5,"models":[]}}"#;
        assert!(Plans::parse(fraction).unwrap_err().starts_with("free.max_n: "));
        let many =
            r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"max_n":4,"models":[]}}"#;
        assert_eq!(Plans::parse(many).unwrap().get("free").max_n, 4);
        assert_eq!(Plans::parse(DEFAULT_PLANS).unwrap().get("pro").max_n, 1, "one choice unless the plan says more");
    }

    #[test]
    fn plans_keep_their_order_and_show_their_name() {
        let plans = Plans::parse(
            r#"{"pro":{"requests_per_minute":2,"tokens_per_day":3,"concurrent_streams":1,"models":["a"]},
            "free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"models":["*"]}}"#,
        )
        .unwrap();
        assert_eq!(plans.names(), vec!["pro", "free"]);
        assert_eq!(
            serde_json::to_string(plans.get("pro")).unwrap(),
            r#"{"name":"pro","requests_per_minute":2,"tokens_per_day":3,"concurrent_streams":1,"max_n":1,"models":["a"]}"#
        );
        let missing = r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1}}"#;
        assert!(Plans::parse(missing).unwrap_err().contains("missing field `models`"));
        let big =
            r#"{"free":{"requests_per_minute":4294967296,"tokens_per_day":1,"concurrent_streams":1,"models":[]}}"#;
        assert!(Plans::parse(big).unwrap_err().starts_with("free.requests_per_minute: "));
        let named =
            r#"{"free":{"name":"x","requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"models":[]}}"#;
        assert!(Plans::parse(named).is_err(), "the name is the member's");
    }

    #[test]
    fn model_lists_restrict_models() {
        let p = Plan {
            name: "x".into(),
            requests_per_minute: 1,
            tokens_per_day: 1,
            concurrent_streams: 1,
            max_n: 1,
            models: vec!["a".into()],
        };
        assert!(p.allows_model("a"));
        assert!(!p.allows_model("b"));
    }

    fn plan() -> Plan {
        Plan {
            name: "free".into(),
            requests_per_minute: 2,
            tokens_per_day: 100,
            concurrent_streams: 1,
            max_n: 1,
            models: vec!["*".into()],
        }
    }

    fn counts(requests: Option<u64>, reserved: bool, slot: Option<bool>) -> Counts {
        Counts { requests_this_minute: requests, tokens_reserved: reserved, stream_slot: slot }
    }

    fn refused(limit: Limit, release_stream: bool, return_tokens: bool) -> Decision {
        Decision::Refused { limit, release_stream, return_tokens }
    }

    #[test]
    fn a_request_within_every_limit_is_admitted() {
        assert_eq!(decide(counts(Some(2), true, None), &plan()), Decision::Admitted);
        assert_eq!(decide(counts(Some(1), true, Some(true)), &plan()), Decision::Admitted);
    }

    #[test]
    fn the_minute_is_checked_first_and_takes_nothing() {
        assert_eq!(decide(counts(Some(3), true, Some(true)), &plan()), refused(Limit::RequestsPerMinute, false, false));
        assert_eq!(decide(counts(Some(3), false, None), &plan()), refused(Limit::RequestsPerMinute, false, false));
        assert_eq!(
            decide(counts(None, false, Some(false)), &plan()),
            refused(Limit::RequestsPerMinute, false, false),
            "nothing counted: refused"
        );
    }

    #[test]
    fn a_spent_budget_gives_back_a_stream_slot_it_took() {
        assert_eq!(decide(counts(Some(1), false, Some(true)), &plan()), refused(Limit::TokensPerDay, true, false));
        assert_eq!(decide(counts(Some(1), false, Some(false)), &plan()), refused(Limit::TokensPerDay, false, false));
        assert_eq!(decide(counts(Some(1), false, None), &plan()), refused(Limit::TokensPerDay, false, false));
    }

    #[test]
    fn no_free_stream_slot_gives_back_the_reserved_tokens() {
        assert_eq!(decide(counts(Some(1), true, Some(false)), &plan()), refused(Limit::ConcurrentStreams, false, true));
    }

    #[test]
    fn refusals_are_429_with_the_limit_and_when_it_resets() {
        let now = 86_400_000 + 30_000;
        let minute = Limit::RequestsPerMinute.refusal(&plan(), now, 7);
        assert_eq!((minute.status, minute.code), (429, "rate_limited"));
        assert_eq!(minute.message, "at most 2 requests per minute on the free plan");
        assert!(minute.headers.contains(&("retry-after", "30".to_string())));
        assert!(minute.headers.contains(&("ratelimit-limit", "2".to_string())));
        let day = Limit::TokensPerDay.refusal(&plan(), now, 130);
        assert_eq!(
            (day.code, day.message.as_str()),
            (
                "token_budget_exceeded",
                "this request may use up to 130 tokens, more than is left of the daily budget of 100 tokens on the free plan"
            )
        );
        assert!(day.headers.contains(&("retry-after", "86370".to_string())));
        let streams = Limit::ConcurrentStreams.refusal(&plan(), now, 7);
        assert_eq!(
            (streams.code, streams.message.as_str()),
            ("too_many_streams", "at most 1 streams at once on the free plan")
        );
        assert!(streams.headers.contains(&("retry-after", "1".to_string())));
    }

    #[test]
    fn windows_count_down_to_their_end() {
        assert_eq!(minute_window(120_000), (120_000, 60));
        assert_eq!(minute_window(179_500), (120_000, 1));
        let (day, left) = day_window(86_400_000 + 3_600_000);
        assert_eq!(day, "1970-01-02");
        assert_eq!(left, 82_800);
        let h = limit_headers(5, 0, 30);
        assert!(h.contains(&("retry-after", "30".to_string())));
        assert!(h.contains(&("ratelimit-limit", "5".to_string())));
    }
}
