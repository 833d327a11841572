//! The admin API's pure parts: the user-update body and its validation, search-prefix
//! escaping for `LIKE`, the usage grouping parameter, and the rows and views of the usage,
//! webhook and audit reports.

use crate::accounts::{Role, User, UserView};
use crate::plans::Plan;
use crate::time::rfc3339;
use crate::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A change to a user; serialized as it is into the audit row's `detail`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateUser {
    pub role: Option<Role>,
    pub plan: Option<String>,
    pub is_disabled: Option<bool>,
}

impl UpdateUser {
    /// Checks the values: a known role and plan, something to change, and no admin taking
    /// their own admin role or access away.
    pub fn validate(&self, plan_exists: impl Fn(&str) -> bool, is_self: bool) -> Result<(), ApiError> {
        if self.role.is_none() && self.plan.is_none() && self.is_disabled.is_none() {
            return Err(ApiError::validation("nothing to update: send role, plan and/or is_disabled"));
        }
        if is_self && self.role == Some(Role::User) {
            return Err(ApiError::validation("admins cannot remove their own admin role"));
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

/// A user as admins see it: the API's view and whether the account is disabled.
#[derive(Debug, Serialize)]
pub struct AdminUserView<'a> {
    #[serde(flatten)]
    pub user: UserView<'a>,
    pub is_disabled: bool,
}

impl User {
    pub fn admin_view(&self) -> AdminUserView<'_> {
        AdminUserView { user: self.view(), is_disabled: self.is_disabled != 0 }
    }
}

/// One group of `GET /admin/usage` (a day, a model or a user; `key` is null for calls
/// without one).
#[derive(Debug, Deserialize, Serialize)]
pub struct UsageRow {
    pub key: Option<String>,
    pub requests: u64,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// `GET /admin/usage`.
#[derive(Debug, Serialize)]
pub struct UsageReport<'a> {
    pub group: &'a str,
    pub days: u64,
    pub data: &'a [UsageRow],
}

/// One day and model of a user's usage.
#[derive(Debug, Deserialize, Serialize)]
pub struct UserUsageRow {
    pub day: String,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// `GET /usage`: the user's plan, today's tokens against its budget, and usage by day and model.
#[derive(Debug, Serialize)]
pub struct UserUsage<'a> {
    pub plan: &'a Plan,
    pub today: Today<'a>,
    pub usage: &'a [UserUsageRow],
}

#[derive(Debug, Serialize)]
pub struct Today<'a> {
    pub day: &'a str,
    pub tokens_used: u64,
    pub tokens_limit: u64,
}

/// A received webhook as stored (`event_created_at` in seconds, as the sender gave it).
#[derive(Debug, Deserialize)]
pub struct WebhookEvent {
    pub webhook_event_id: String,
    pub source: String,
    pub event_type: String,
    pub event_created_at: u64,
    pub outcome: String,
    pub received_at: u64,
}

#[derive(Debug, Serialize)]
pub struct WebhookEventView<'a> {
    pub webhook_event_id: &'a str,
    pub source: &'a str,
    pub event_type: &'a str,
    pub event_created_at: String,
    pub outcome: &'a str,
    pub received_at: String,
}

impl WebhookEvent {
    pub fn view(&self) -> WebhookEventView<'_> {
        WebhookEventView {
            webhook_event_id: &self.webhook_event_id,
            source: &self.source,
            event_type: &self.event_type,
            event_created_at: rfc3339(self.event_created_at.saturating_mul(1000)),
            outcome: &self.outcome,
            received_at: rfc3339(self.received_at),
        }
    }
}

/// An admin action as stored; `detail` is the JSON text of the change.
#[derive(Debug, Deserialize)]
pub struct AuditRow {
    pub admin_audit_id: String,
    pub admin_user_id: String,
    pub target_user_id: String,
    pub action: String,
    pub detail: String,
    pub created_at: u64,
}

#[derive(Debug, Serialize)]
pub struct AuditView<'a> {
    pub admin_audit_id: &'a str,
    pub admin_user_id: &'a str,
    pub target_user_id: &'a str,
    pub action: &'a str,
    /// The change as it was written; `null` if the stored text is not JSON.
    pub detail: Option<&'a RawValue>,
    pub created_at: String,
}

impl AuditRow {
    pub fn view(&self) -> AuditView<'_> {
        AuditView {
            admin_audit_id: &self.admin_audit_id,
            admin_user_id: &self.admin_user_id,
            target_user_id: &self.target_user_id,
            action: &self.action,
            detail: serde_json::from_slice(self.detail.as_bytes()).ok(),
            created_at: rfc3339(self.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(role: Option<Role>, plan: Option<&str>, disabled: Option<bool>) -> UpdateUser {
        UpdateUser { role, plan: plan.map(Into::into), is_disabled: disabled }
    }

    #[test]
    fn updates_need_known_values_and_something_to_change() {
        let plans = |p: &str| p == "free" || p == "pro";
        assert!(update(Some(Role::Admin), Some("pro"), Some(true)).validate(plans, false).is_ok());
        assert!(update(None, None, None).validate(plans, false).is_err());
        let root = crate::body::parse_json::<UpdateUser>(Some("application/json"), br#"{"role":"root"}"#);
        assert_eq!(root.unwrap_err().status, 422, "an unknown role is refused when the body is read");
        let five = crate::body::parse_json::<UpdateUser>(Some("application/json"), br#"{"role":5}"#).unwrap_err();
        assert_eq!((five.status, five.message.as_str()), (422, "role: invalid type: integer `5`, expected a string"));
        assert!(update(None, Some("gold"), None).validate(plans, false).is_err());
    }

    #[test]
    fn admins_cannot_lock_themselves_out() {
        let plans = |_: &str| true;
        assert!(update(Some(Role::User), None, None).validate(plans, true).is_err());
        assert!(update(None, None, Some(true)).validate(plans, true).is_err());
        assert!(update(None, Some("pro"), Some(false)).validate(plans, true).is_ok());
    }

    #[test]
    fn update_bodies_reject_unknown_fields_and_audit_as_they_came() {
        let json = Some("application/json");
        let req: UpdateUser = crate::body::parse_json(json, br#"{"plan":"pro"}"#).unwrap();
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"role":null,"plan":"pro","is_disabled":null}"#);
        let err = crate::body::parse_json::<UpdateUser>(json, br#"{"plan":"pro","email":"x"}"#).unwrap_err();
        assert_eq!(err.status, 422);
        let err = crate::body::parse_json::<UpdateUser>(json, br#"{"is_disabled":"yes"}"#).unwrap_err();
        assert!(err.message.starts_with("is_disabled: "), "{}", err.message);
    }

    #[test]
    fn report_views_have_the_documented_shapes() {
        let audit = |detail: &str| AuditRow {
            admin_audit_id: "aud_1".into(),
            admin_user_id: "usr_a".into(),
            target_user_id: "usr_b".into(),
            action: "update_user".into(),
            detail: detail.into(),
            created_at: 0,
        };
        let row = audit(r#"{"role":"admin","plan":null,"is_disabled":null}"#);
        assert_eq!(
            serde_json::to_string(&row.view()).unwrap(),
            r#"{"admin_audit_id":"aud_1","admin_user_id":"usr_a","target_user_id":"usr_b","action":"update_user","detail":{"role":"admin","plan":null,"is_disabled":null},"created_at":"1970-01-01T00:00:00.000Z"}"#
        );
        let broken = audit("{not json");
        assert_eq!(serde_json::to_value(broken.view()).unwrap()["detail"], serde_json::Value::Null);
        let event = WebhookEvent {
            webhook_event_id: "evt_1".into(),
            source: "stripe".into(),
            event_type: "invoice.paid".into(),
            event_created_at: 1,
            outcome: "applied".into(),
            received_at: 2000,
        };
        assert_eq!(
            serde_json::to_value(event.view()).unwrap(),
            serde_json::json!({"webhook_event_id":"evt_1","source":"stripe","event_type":"invoice.paid",
                "event_created_at":"1970-01-01T00:00:01.000Z","outcome":"applied","received_at":"1970-01-01T00:00:02.000Z"})
        );
        let rows: Vec<UsageRow> =
            crate::body::parse_rows(r#"[{"key":null,"requests":2,"prompt_tokens":null,"completion_tokens":5}]"#)
                .unwrap();
        assert_eq!(
            serde_json::to_value(UsageReport { group: "model", days: 7, data: &rows }).unwrap(),
            serde_json::json!({"group":"model","days":7,"data":[{"key":null,"requests":2,"prompt_tokens":null,"completion_tokens":5}]})
        );
    }

    #[test]
    fn admins_see_whether_a_user_is_disabled() {
        let user: User = crate::body::parse_rows::<User>(
            r#"[{"user_id":"usr_1","email":"a@b.example","display_name":"A","role":"user","plan":"free",
            "is_disabled":1,"created_at":0,"updated_at":0}]"#,
        )
        .unwrap()
        .remove(0);
        let v = serde_json::to_value(user.admin_view()).unwrap();
        assert_eq!(
            (v["user_id"].as_str(), v["display_name"].as_str(), v["is_disabled"].as_bool()),
            (Some("usr_1"), Some("A"), Some(true))
        );
        assert_eq!(v.as_object().unwrap().len(), 8);
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
