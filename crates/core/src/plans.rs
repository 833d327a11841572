//! Plans and their limits (requests per minute, tokens per day, concurrent streams, allowed
//! models), and the window arithmetic and headers of rate-limited answers.

use crate::body::{parse_config, Entries};
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
    /// Model names this plan may use; `"*"` allows all.
    pub models: Vec<String>,
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
            if plan.requests_per_minute == 0 || plan.concurrent_streams == 0 {
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
            r#"{"name":"pro","requests_per_minute":2,"tokens_per_day":3,"concurrent_streams":1,"models":["a"]}"#
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
            models: vec!["a".into()],
        };
        assert!(p.allows_model("a"));
        assert!(!p.allows_model("b"));
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
