//! Configuration: every variable the Worker reads, its default, and its validation.
//!
//! Parsing never fails outright: a bad or missing variable becomes a [`ConfigError`] naming
//! it, reported by `/health/ready` and by every route that needs configuration.

use crate::chat::RetryPolicy;
use crate::conversations::Limits as ConversationLimits;
use crate::cors::CorsPolicy;
use crate::llm::provider::Provider;
use crate::llm::routing::Routes;
use crate::password::MAX_ITERATIONS;
use crate::plans::{Plans, DEFAULT_PLANS};
use crate::throttle::{LoginLimits, RegisterLimits};
use std::fmt;

/// Default request body cap: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Shortest accepted `JWT_SECRET`.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Routes used when `MODEL_ROUTES` is unset: the local simulator's models.
pub const DEFAULT_MODEL_ROUTES: &str = r#"{"default":"sim-small","models":{
  "sim-small":{"provider":"openai","context_tokens":8192},
  "sim-large":{"provider":"openai","context_tokens":32768},
  "sim-claude":{"provider":"anthropic","context_tokens":200000},
  "sim-embed":{"provider":"openai","context_tokens":8192,"kind":"embedding"}}}"#;

/// A missing or invalid variable; the message names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.variable, self.problem)
    }
}

/// The parsed configuration of one Worker environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub cors: CorsPolicy,
    pub max_body_bytes: u64,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_seconds: u64,
    pub refresh_token_ttl_seconds: u64,
    pub password_iterations: u32,
    pub login_limits: LoginLimits,
    pub register_limits: RegisterLimits,
    pub conversation_limits: ConversationLimits,
    /// Per-user caps on stored tasks and memories.
    pub agent_caps: crate::agent::Caps,
    /// How far one chat turn's agent loop may go (`MAX_TOOL_STEPS`, `TOOL_TIME_BUDGET_MS`).
    pub agent_loop: crate::agent::turn::LoopLimits,
    /// TTL of KV read-through cache entries (KV's minimum is 60 s).
    pub cache_ttl_seconds: u64,
    /// TTL of cached gateway responses.
    pub gateway_cache_ttl_seconds: u64,
    /// Model routing (`MODEL_ROUTES`): public model names to providers and fallbacks.
    pub routes: Routes,
    pub openai_base_url: String,
    pub openai_api_key: Option<String>,
    pub anthropic_base_url: String,
    pub anthropic_api_key: Option<String>,
    pub retry: RetryPolicy,
    /// Longest wait for an upstream's first byte (and between bytes) before giving up.
    pub first_byte_timeout_ms: u64,
    /// Interval of `: ping` comments on an idle SSE stream.
    pub heartbeat_ms: u64,
    /// The old rule for chat turns: a turn is stopped when its last reader leaves (by default
    /// it runs to its end and is stopped only by an explicit cancel).
    pub cancel_on_disconnect: bool,
    /// Plans and their limits (`PLANS`).
    pub plans: Plans,
    /// Stripe price id -> plan name (`STRIPE_PRICE_PLANS`).
    pub stripe_price_plans: Vec<(String, String)>,
    stripe_webhook_secret: Option<String>,
    jwt_secret: Result<Vec<u8>, ConfigError>,
    problems: Vec<ConfigError>,
}

/// Reads a whole number in `min..=max`, recording a problem (and using `default`) otherwise.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<ConfigError>,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> u64 {
    let Some(raw) = get(variable) else {
        return default;
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => n,
        _ => {
            problems.push(ConfigError { variable, problem: format!("must be a whole number from {min} to {max}") });
            default
        }
    }
}

fn text(get: &impl Fn(&str) -> Option<String>, variable: &str, default: &str) -> String {
    get(variable).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

impl Config {
    /// Reads every variable through `get` (vars and secrets alike), applying defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut problems = Vec::new();
        let cors = match get("CORS_ORIGINS") {
            None => CorsPolicy::default(),
            Some(raw) => CorsPolicy::parse(&raw).unwrap_or_else(|problem| {
                problems.push(ConfigError { variable: "CORS_ORIGINS", problem });
                CorsPolicy::default()
            }),
        };
        let p = &mut problems;
        let max_body_bytes = number(&get, p, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 100 * 1024 * 1024);
        let access_token_ttl_seconds = number(&get, p, "ACCESS_TOKEN_TTL_SECONDS", 900, 30, 86_400);
        let refresh_token_ttl_seconds = number(&get, p, "REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, 300, 365 * 86_400);
        let password_iterations =
            number(&get, p, "PASSWORD_HASH_ITERATIONS", MAX_ITERATIONS.into(), 1_000, MAX_ITERATIONS.into()) as u32;
        let defaults = LoginLimits::default();
        let login_limits = LoginLimits {
            per_email_ip: number(&get, p, "LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP", defaults.per_email_ip.into(), 1, 1_000)
                as u32,
            per_ip: number(&get, p, "LOGIN_MAX_FAILURES_PER_IP", defaults.per_ip.into(), 1, 100_000) as u32,
            per_email: number(&get, p, "LOGIN_MAX_FAILURES_PER_EMAIL", defaults.per_email.into(), 1, 1_000) as u32,
            email_delay_seconds: number(&get, p, "LOGIN_EMAIL_DELAY_SECONDS", defaults.email_delay_seconds, 1, 3_600),
            window_seconds: number(&get, p, "LOGIN_LOCKOUT_SECONDS", defaults.window_seconds, 1, 86_400),
        };
        let defaults = RegisterLimits::default();
        let register_limits = RegisterLimits {
            per_ip: number(&get, p, "REGISTER_MAX_PER_IP", defaults.per_ip.into(), 1, 1_000_000) as u32,
            window_seconds: number(&get, p, "REGISTER_WINDOW_SECONDS", defaults.window_seconds, 1, 86_400),
        };
        let d = ConversationLimits::default();
        let conversation_limits = ConversationLimits {
            title_chars: number(&get, p, "MAX_TITLE_CHARS", d.title_chars as u64, 1, 10_000) as usize,
            system_prompt_bytes: number(&get, p, "MAX_SYSTEM_PROMPT_BYTES", d.system_prompt_bytes as u64, 1, 1 << 20)
                as usize,
            message_bytes: number(&get, p, "MAX_MESSAGE_BYTES", d.message_bytes as u64, 1, 1 << 20) as usize,
            conversations_per_user: number(
                &get,
                p,
                "MAX_CONVERSATIONS_PER_USER",
                d.conversations_per_user,
                1,
                10_000_000,
            ),
            messages_per_conversation: number(
                &get,
                p,
                "MAX_MESSAGES_PER_CONVERSATION",
                d.messages_per_conversation,
                1,
                100_000,
            ),
        };
        let d = crate::agent::Caps::default();
        let agent_caps = crate::agent::Caps {
            tasks_per_user: number(&get, p, "MAX_TASKS_PER_USER", d.tasks_per_user, 1, 1_000_000),
            memories_per_user: number(&get, p, "MAX_MEMORIES_PER_USER", d.memories_per_user, 1, 1_000_000),
        };
        let l = crate::agent::turn::LoopLimits::default();
        let agent_loop = crate::agent::turn::LoopLimits {
            max_steps: number(&get, p, "MAX_TOOL_STEPS", l.max_steps.into(), 1, 64) as u32,
            time_budget_ms: number(&get, p, "TOOL_TIME_BUDGET_MS", l.time_budget_ms, 1_000, 900_000),
        };
        let cache_ttl_seconds = number(&get, p, "CACHE_TTL_SECONDS", 300, 60, 86_400);
        let gateway_cache_ttl_seconds = number(&get, p, "GATEWAY_CACHE_TTL_SECONDS", 3_600, 60, 30 * 86_400);
        let routes = match get("MODEL_ROUTES") {
            None => Routes::parse(DEFAULT_MODEL_ROUTES),
            Some(raw) => Routes::parse(&raw),
        }
        .unwrap_or_else(|problem| {
            p.push(ConfigError { variable: "MODEL_ROUTES", problem: format!("is invalid: {problem}") });
            Routes::parse(DEFAULT_MODEL_ROUTES).unwrap_or_else(|_| unreachable!("the built-in routes parse"))
        });
        let mut base_url = |variable: &'static str, default: &str| {
            let url = text(&get, variable, default).trim_end_matches('/').to_string();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                p.push(ConfigError { variable, problem: "must be an http:// or https:// URL".into() });
            }
            url
        };
        let openai_base_url = base_url("OPENAI_BASE_URL", "https://api.openai.com/v1");
        let anthropic_base_url = base_url("ANTHROPIC_BASE_URL", "https://api.anthropic.com");
        let secret = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let retry_defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            retries: number(&get, p, "UPSTREAM_RETRIES", retry_defaults.retries.into(), 0, 10) as u32,
            base_delay_ms: retry_defaults.base_delay_ms,
            max_delay_ms: number(&get, p, "UPSTREAM_MAX_RETRY_DELAY_MS", retry_defaults.max_delay_ms, 0, 60_000),
        };
        let first_byte_timeout_ms = number(&get, p, "UPSTREAM_FIRST_BYTE_TIMEOUT_MS", 30_000, 100, 600_000);
        let heartbeat_ms = number(&get, p, "SSE_HEARTBEAT_MS", 15_000, 100, 120_000);
        let cancel_on_disconnect = match get("TURN_CANCEL_ON_DISCONNECT").as_deref().map(str::trim) {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(_) => {
                p.push(ConfigError { variable: "TURN_CANCEL_ON_DISCONNECT", problem: "must be true or false".into() });
                false
            }
        };
        let plans =
            Plans::parse(&get("PLANS").unwrap_or_else(|| DEFAULT_PLANS.to_string())).unwrap_or_else(|problem| {
                p.push(ConfigError { variable: "PLANS", problem: format!("is invalid: {problem}") });
                Plans::parse(DEFAULT_PLANS).unwrap_or_else(|_| unreachable!("the built-in plans parse"))
            });
        let stripe_price_plans = match get("STRIPE_PRICE_PLANS") {
            None => Vec::new(),
            Some(raw) => match price_plans(&raw) {
                Some(pairs) => pairs,
                None => {
                    p.push(ConfigError {
                        variable: "STRIPE_PRICE_PLANS",
                        problem: "must be a JSON object of price id to plan name".into(),
                    });
                    Vec::new()
                }
            },
        };
        let jwt_issuer = text(&get, "JWT_ISSUER", "edgechat");
        let jwt_audience = text(&get, "JWT_AUDIENCE", "edgechat");
        let jwt_secret = match get("JWT_SECRET") {
            None => Err(ConfigError { variable: "JWT_SECRET", problem: "is missing".into() }),
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => Err(ConfigError {
                variable: "JWT_SECRET",
                problem: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
            }),
            Some(s) => Ok(s.into_bytes()),
        };
        Self {
            cors,
            max_body_bytes,
            jwt_issuer,
            jwt_audience,
            access_token_ttl_seconds,
            refresh_token_ttl_seconds,
            password_iterations,
            login_limits,
            register_limits,
            conversation_limits,
            agent_caps,
            agent_loop,
            cache_ttl_seconds,
            gateway_cache_ttl_seconds,
            routes,
            openai_api_key: secret("OPENAI_API_KEY"),
            anthropic_api_key: secret("ANTHROPIC_API_KEY"),
            openai_base_url,
            anthropic_base_url,
            retry,
            first_byte_timeout_ms,
            heartbeat_ms,
            cancel_on_disconnect,
            plans,
            stripe_price_plans,
            stripe_webhook_secret: secret("STRIPE_WEBHOOK_SECRET"),
            jwt_secret,
            problems,
        }
    }

    /// The first invalid variable, if any; routes that need configuration fail with it.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.problems.first().map_or(Ok(()), |e| Err(e.clone()))
    }

    /// The JWT signing secret, validated at first use.
    pub fn jwt_secret(&self) -> Result<&[u8], ConfigError> {
        self.jwt_secret.as_deref().map_err(Clone::clone)
    }

    /// The Stripe webhook signing secret, validated at first use.
    pub fn stripe_webhook_secret(&self) -> Result<&str, ConfigError> {
        self.stripe_webhook_secret
            .as_deref()
            .ok_or(ConfigError { variable: "STRIPE_WEBHOOK_SECRET", problem: "is missing".into() })
    }

    /// The base URL and API key of a provider's HTTP API.
    pub fn provider_endpoint(&self, provider: Provider) -> (&str, Option<&str>) {
        match provider {
            Provider::Anthropic => (&self.anthropic_base_url, self.anthropic_api_key.as_deref()),
            Provider::OpenAi | Provider::WorkersAi => (&self.openai_base_url, self.openai_api_key.as_deref()),
        }
    }

    /// Every problem, including missing secrets: what `/health/ready` reports.
    pub fn all_problems(&self) -> Vec<ConfigError> {
        let mut all = self.problems.clone();
        if let Err(e) = &self.jwt_secret {
            all.push(e.clone());
        }
        all
    }
}

/// `STRIPE_PRICE_PLANS`: a JSON object of price id to plan name, in the order given.
fn price_plans(raw: &str) -> Option<Vec<(String, String)>> {
    crate::body::parse_config::<crate::body::Entries<String>>(raw).ok().map(|entries| entries.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_apply_when_variables_are_absent() {
        let c = config(&[("JWT_SECRET", SECRET)]);
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(c.check().is_ok());
        assert!(c.all_problems().is_empty());
    }

    #[test]
    fn turns_run_on_after_a_client_leaves_unless_the_old_rule_is_chosen() {
        assert!(!config(&[("JWT_SECRET", SECRET)]).cancel_on_disconnect);
        assert!(config(&[("JWT_SECRET", SECRET), ("TURN_CANCEL_ON_DISCONNECT", "true")]).cancel_on_disconnect);
        let bad = config(&[("JWT_SECRET", SECRET), ("TURN_CANCEL_ON_DISCONNECT", "yes")]);
        assert_eq!(bad.check().unwrap_err().variable, "TURN_CANCEL_ON_DISCONNECT");
    }

    #[test]
    fn a_missing_jwt_secret_is_named_at_first_use() {
        let c = config(&[]);
        assert!(c.check().is_ok(), "routes that need no secret still work");
        let err = c.jwt_secret().unwrap_err();
        assert_eq!(err.to_string(), "JWT_SECRET is missing");
        assert_eq!(c.all_problems(), vec![err]);
    }

    #[test]
    fn a_short_jwt_secret_is_rejected_without_echoing_it() {
        let err = config(&[("JWT_SECRET", "short-secret")]).jwt_secret().unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        assert!(!err.to_string().contains("short-secret"));
    }

    #[test]
    fn a_bad_body_cap_is_named() {
        let c = config(&[("JWT_SECRET", SECRET), ("MAX_BODY_BYTES", "lots")]);
        assert_eq!(c.check().unwrap_err().variable, "MAX_BODY_BYTES");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config(&[("MAX_BODY_BYTES", "2048")]).max_body_bytes, 2048);
    }

    #[test]
    fn token_and_login_settings_have_defaults_and_bounds() {
        let c = config(&[]);
        assert_eq!(c.access_token_ttl_seconds, 900);
        assert_eq!(c.refresh_token_ttl_seconds, 30 * 86_400);
        assert_eq!(c.password_iterations, 100_000);
        assert_eq!(c.jwt_issuer, "edgechat");
        let bad = config(&[("PASSWORD_HASH_ITERATIONS", "200000")]);
        assert_eq!(bad.check().unwrap_err().variable, "PASSWORD_HASH_ITERATIONS");
        assert_eq!(bad.password_iterations, 100_000);
        assert_eq!(config(&[("LOGIN_MAX_FAILURES_PER_EMAIL", "3")]).login_limits.per_email, 3);
        assert_eq!(config(&[("LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP", "4")]).login_limits.per_email_ip, 4);
        assert_eq!(c.register_limits, crate::throttle::RegisterLimits { per_ip: 10, window_seconds: 3600 });
        assert_eq!(config(&[("REGISTER_MAX_PER_IP", "0")]).check().unwrap_err().variable, "REGISTER_MAX_PER_IP");
    }

    #[test]
    fn task_and_memory_caps_have_defaults_and_bounds() {
        let c = config(&[]);
        assert_eq!(c.agent_caps, crate::agent::Caps { tasks_per_user: 1_000, memories_per_user: 1_000 });
        let set = config(&[("MAX_TASKS_PER_USER", "3"), ("MAX_MEMORIES_PER_USER", "2")]);
        assert_eq!(set.agent_caps, crate::agent::Caps { tasks_per_user: 3, memories_per_user: 2 });
        assert!(set.check().is_ok());
        for (variable, value) in [("MAX_TASKS_PER_USER", "0"), ("MAX_MEMORIES_PER_USER", "many")] {
            let bad = config(&[(variable, value)]);
            assert_eq!(bad.check().unwrap_err().variable, variable);
            assert_eq!(bad.agent_caps, crate::agent::Caps::default());
        }
    }

    #[test]
    fn the_agent_loop_limits_have_defaults_and_bounds() {
        let c = config(&[]);
        assert_eq!(c.agent_loop, crate::agent::turn::LoopLimits { max_steps: 8, time_budget_ms: 60_000 });
        let set = config(&[("MAX_TOOL_STEPS", "3"), ("TOOL_TIME_BUDGET_MS", "5000")]);
        assert_eq!(set.agent_loop, crate::agent::turn::LoopLimits { max_steps: 3, time_budget_ms: 5_000 });
        for (variable, value) in [("MAX_TOOL_STEPS", "0"), ("TOOL_TIME_BUDGET_MS", "10")] {
            assert_eq!(config(&[(variable, value)]).check().unwrap_err().variable, variable);
        }
    }

    #[test]
    fn model_routes_default_to_the_simulator_and_bad_ones_are_named() {
        let c = config(&[]);
        assert_eq!(c.routes.default_model(), "sim-small");
        assert_eq!(c.openai_base_url, "https://api.openai.com/v1");
        let bad = config(&[("MODEL_ROUTES", "{not json")]);
        assert_eq!(bad.check().unwrap_err().variable, "MODEL_ROUTES");
        let url = config(&[("OPENAI_BASE_URL", "localhost:8788/v1/")]);
        assert_eq!(url.check().unwrap_err().variable, "OPENAI_BASE_URL");
        let ok = config(&[("OPENAI_BASE_URL", "http://127.0.0.1:8788/v1/"), ("OPENAI_API_KEY", " k ")]);
        assert_eq!(ok.provider_endpoint(Provider::OpenAi), ("http://127.0.0.1:8788/v1", Some("k")));
    }

    #[test]
    fn admission_settings_that_do_not_hold_name_their_variable() {
        let fields =
            r#"{"default":"a","models":{"a":{"provider":"openai","allow_fields":["service_tier","logit_bias"]}}}"#;
        let bad = config(&[("MODEL_ROUTES", fields)]).check().unwrap_err();
        assert_eq!(bad.variable, "MODEL_ROUTES");
        assert!(bad.problem.contains("allow_fields lists \"logit_bias\""), "{}", bad.problem);
        let zero =
            r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"max_n":0,"models":["*"]}}"#;
        assert_eq!(config(&[("PLANS", zero)]).check().unwrap_err().variable, "PLANS");
        let ok = config(&[
            ("MODEL_ROUTES", r#"{"default":"a","models":{"a":{"provider":"openai","allow_fields":["store"]}}}"#),
            (
                "PLANS",
                r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"max_n":2,"models":["*"]}}"#,
            ),
        ]);
        assert!(ok.routes.resolve(None).unwrap().allows_field("store"));
        assert_eq!(ok.plans.get("free").max_n, 2);
    }

    #[test]
    fn stripe_prices_map_to_plans_in_order() {
        let c = config(&[("STRIPE_PRICE_PLANS", r#"{"price_b":"pro","price_a":"free"}"#)]);
        assert_eq!(c.stripe_price_plans, vec![("price_b".into(), "pro".into()), ("price_a".into(), "free".into())]);
        for bad in [r#"{"price_a":1}"#, "[]", "{"] {
            let c = config(&[("STRIPE_PRICE_PLANS", bad)]);
            assert_eq!(c.check().unwrap_err().variable, "STRIPE_PRICE_PLANS", "{bad}");
        }
    }

    #[test]
    fn a_bad_cors_origin_is_named() {
        let c = config(&[("CORS_ORIGINS", "https://ok.example, not a url")]);
        assert_eq!(c.check().unwrap_err().variable, "CORS_ORIGINS");
    }
}
