//! The admin API's pure parts: the user-update body and its validation, search-prefix
//! escaping for `LIKE`, and the usage grouping parameter.

use crate::body::{Fields, FromJson};
use crate::ApiError;

#[derive(Debug, Default)]
pub struct UpdateUser {
    pub role: Option<String>,
    pub plan: Option<String>,
    pub is_disabled: Option<bool>,
}

impl FromJson for UpdateUser {
    fn from_json(f: &mut Fields) -> Result<Self, String> {
        Ok(Self { role: f.opt_text("role")?, plan: f.opt_text("plan")?, is_disabled: f.opt_bool("is_disabled")? })
    }
}

impl UpdateUser {
    /// Checks the values: a known role and plan, something to change, and no admin taking
    /// their own admin role or access away.
    pub fn validate(&self, plan_exists: impl Fn(&str) -> bool, is_self: bool) -> Result<(), ApiError> {
        if self.role.is_none() && self.plan.is_none() && self.is_disabled.is_none() {
            return Err(ApiError::validation("nothing to update: send role, plan and/or is_disabled"));
        }
        if let Some(role) = &self.role {
            if role != "user" && role != "admin" {
                return Err(ApiError::validation("role must be \"user\" or \"admin\""));
            }
            if is_self && role != "admin" {
                return Err(ApiError::validation("admins cannot remove their own admin role"));
            }
        }
        if let Some(plan) = &self.plan {
            if !plan_exists(plan) {
                return Err(ApiError::validation(format!("unknown plan \"{plan}\"")));
            }
        }
        if is_self && self.is_disabled == Some(true) {
            return Err(ApiError::validation("admins cannot disable themselves"));
        }
        Ok(())
    }
}

/// A `LIKE` pattern matching strings that start with `prefix` (with `ESCAPE '\'`).
pub fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// How admin usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    User,
    Model,
    Day,
}

impl UsageGroup {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.unwrap_or("day") {
            "user" => Ok(Self::User),
            "model" => Ok(Self::Model),
            "day" => Ok(Self::Day),
            _ => Err(ApiError::bad_request("invalid_group", "group must be user, model or day")),
        }
    }
}

/// The `days` parameter of usage queries: 1 to 366, default 30.
pub fn parse_days(raw: Option<&str>) -> Result<u64, ApiError> {
    match raw {
        None => Ok(30),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=366).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request("invalid_days", "days must be a whole number from 1 to 366")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(role: Option<&str>, plan: Option<&str>, disabled: Option<bool>) -> UpdateUser {
        UpdateUser { role: role.map(Into::into), plan: plan.map(Into::into), is_disabled: disabled }
    }

    #[test]
    fn updates_need_known_values_and_something_to_change() {
        let plans = |p: &str| p == "free" || p == "pro";
        assert!(update(Some("admin"), Some("pro"), Some(true)).validate(plans, false).is_ok());
        assert!(update(None, None, None).validate(plans, false).is_err());
        assert!(update(Some("root"), None, None).validate(plans, false).is_err());
        assert!(update(None, Some("gold"), None).validate(plans, false).is_err());
    }

    #[test]
    fn admins_cannot_lock_themselves_out() {
        let plans = |_: &str| true;
        assert!(update(Some("user"), None, None).validate(plans, true).is_err());
        assert!(update(None, None, Some(true)).validate(plans, true).is_err());
        assert!(update(None, Some("pro"), Some(false)).validate(plans, true).is_ok());
    }

    #[test]
    fn like_prefixes_escape_wildcards() {
        assert_eq!(like_prefix("ada"), "ada%");
        assert_eq!(like_prefix("a_%\\"), "a\\_\\%\\\\%");
    }

    #[test]
    fn usage_parameters_are_checked() {
        assert_eq!(UsageGroup::parse(None).unwrap(), UsageGroup::Day);
        assert_eq!(UsageGroup::parse(Some("user")).unwrap(), UsageGroup::User);
        assert!(UsageGroup::parse(Some("week")).is_err());
        assert_eq!(parse_days(Some("7")).unwrap(), 7);
        assert!(parse_days(Some("0")).is_err());
        assert!(parse_days(Some("x")).is_err());
    }
}
