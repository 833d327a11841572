//! Configuration: every variable the Worker reads, its default, and its validation.
//!
//! Parsing never fails outright: a bad or missing variable becomes a [`ConfigError`] naming
//! it, reported by `/health/ready` and by every route that needs configuration.

use crate::cors::CorsPolicy;
use std::fmt;

/// Default request body cap: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Shortest accepted `JWT_SECRET`.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

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
    jwt_secret: Result<Vec<u8>, ConfigError>,
    problems: Vec<ConfigError>,
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
        let max_body_bytes = match get("MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n >= 1024 => n,
                _ => {
                    problems.push(ConfigError {
                        variable: "MAX_BODY_BYTES",
                        problem: "must be a whole number of bytes, at least 1024".into(),
                    });
                    DEFAULT_MAX_BODY_BYTES
                }
            },
        };
        let jwt_secret = match get("JWT_SECRET") {
            None => Err(ConfigError { variable: "JWT_SECRET", problem: "is missing".into() }),
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => Err(ConfigError {
                variable: "JWT_SECRET",
                problem: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
            }),
            Some(s) => Ok(s.into_bytes()),
        };
        Self { cors, max_body_bytes, jwt_secret, problems }
    }

    /// The first invalid variable, if any; routes that need configuration fail with it.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.problems.first().map_or(Ok(()), |e| Err(e.clone()))
    }

    /// The JWT signing secret, validated at first use.
    pub fn jwt_secret(&self) -> Result<&[u8], ConfigError> {
        self.jwt_secret.as_deref().map_err(Clone::clone)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
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
    fn a_bad_cors_origin_is_named() {
        let c = config(&[("CORS_ORIGINS", "https://ok.example, not a url")]);
        assert_eq!(c.check().unwrap_err().variable, "CORS_ORIGINS");
    }
}
