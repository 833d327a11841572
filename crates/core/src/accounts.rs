//! Accounts: the request bodies of the auth, profile and key endpoints, their validation,
//! and the user and key representations the API returns.

use crate::body::{Fields, FromJson};
use crate::json_out::{Object, ToJson};
use crate::row::{FromRow, Row};
use crate::{time::rfc3339, ApiError};

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_KEY_NAME_CHARS: usize = 100;

#[derive(Debug)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

impl FromJson for RegisterRequest {
    fn from_json(f: &mut Fields) -> Result<Self, String> {
        Ok(Self { email: f.text("email")?, password: f.text("password")?, display_name: f.opt_text("display_name")? })
    }
}

#[derive(Debug)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

impl FromJson for LoginRequest {
    fn from_json(f: &mut Fields) -> Result<Self, String> {
        Ok(Self { email: f.text("email")?, password: f.text("password")? })
    }
}

#[derive(Debug, Default)]
pub struct RefreshRequest {
    /// Absent when the refresh token travels in the HttpOnly cookie.
    pub refresh_token: Option<String>,
}

impl FromJson for RefreshRequest {
    fn from_json(f: &mut Fields) -> Result<Self, String> {
        Ok(Self { refresh_token: f.opt_text("refresh_token")? })
    }
}

#[derive(Debug)]
pub struct UpdateMeRequest {
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

impl FromJson for UpdateMeRequest {
    fn from_json(f: &mut Fields) -> Result<Self, String> {
        Ok(Self {
            display_name: f.opt_text("display_name")?,
            password: f.opt_text("password")?,
            current_password: f.opt_text("current_password")?,
        })
    }
}

#[derive(Debug)]
pub struct CreateKeyRequest {
    pub name: String,
}

impl FromJson for CreateKeyRequest {
    fn from_json(f: &mut Fields) -> Result<Self, String> {
        Ok(Self { name: f.text("name")? })
    }
}

/// Trims and lowercases (ASCII letters; other characters compare exactly) an email and
/// checks its shape (one `@`, a dotted domain, no spaces
/// or control characters, at most 254 bytes).
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_ascii_lowercase();
    let invalid = || ApiError::validation("email must be a valid address like name@example.com");
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(invalid());
    }
    Ok(email)
}

/// Trims a display name; empty means none. At most 100 characters, no control characters.
pub fn normalize_display_name(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(name) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(Some(name.to_string()))
}

/// An API key's name: 1 to 100 characters after trimming, no control characters.
pub fn normalize_key_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::validation(format!("name must be 1 to {MAX_KEY_NAME_CHARS} characters")));
    }
    Ok(name.to_string())
}

/// True when `email` (normalized) is listed in `ADMIN_EMAILS`.
pub fn is_admin_email(email: &str, admin_emails: &[String]) -> bool {
    admin_emails.iter().any(|a| a == email)
}

/// A user as stored (epoch-ms timestamps), without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
    pub plan: String,
    pub is_disabled: i64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Bumped by every write to the user's conversations: part of every cache key, so a
    /// cached read can never be older than the user's last write.
    pub cache_version: u64,
}

impl FromRow for User {
    fn from_row(r: &mut Row) -> Self {
        Self {
            user_id: r.text("user_id"),
            email: r.text("email"),
            display_name: r.opt_text("display_name"),
            role: r.text("role"),
            plan: r.text("plan"),
            is_disabled: r.int("is_disabled"),
            created_at: r.uint("created_at"),
            updated_at: r.uint("updated_at"),
            cache_version: r.opt_uint("cache_version").unwrap_or(0),
        }
    }
}

/// The API's view of a user.
#[derive(Debug)]
pub struct UserView<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub role: &'a str,
    pub plan: &'a str,
    pub created_at: String,
    pub updated_at: String,
}

impl UserView<'_> {
    /// The view's fields, for a caller that adds more before `end()`.
    pub fn object(&self) -> Object {
        Object::new()
            .str("user_id", self.user_id)
            .str("email", self.email)
            .opt_str("display_name", self.display_name)
            .str("role", self.role)
            .str("plan", self.plan)
            .str("created_at", &self.created_at)
            .str("updated_at", &self.updated_at)
    }
}

impl ToJson for UserView<'_> {
    fn to_json(&self) -> String {
        self.object().end()
    }
}

impl User {
    pub fn view(&self) -> UserView<'_> {
        UserView {
            user_id: &self.user_id,
            email: &self.email,
            display_name: self.display_name.as_deref(),
            role: &self.role,
            plan: &self.plan,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub api_key_id: String,
    pub name: String,
    pub key_prefix: String,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
}

impl FromRow for ApiKey {
    fn from_row(r: &mut Row) -> Self {
        Self {
            api_key_id: r.text("api_key_id"),
            name: r.text("name"),
            key_prefix: r.text("key_prefix"),
            created_at: r.uint("created_at"),
            last_used_at: r.opt_uint("last_used_at"),
        }
    }
}

/// The API's view of a key; `key` is present only in the creation response.
#[derive(Debug)]
pub struct ApiKeyView<'a> {
    pub api_key_id: &'a str,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub key: Option<&'a str>,
}

impl ToJson for ApiKeyView<'_> {
    fn to_json(&self) -> String {
        let o = Object::new()
            .str("api_key_id", self.api_key_id)
            .str("name", self.name)
            .str("key_prefix", self.key_prefix)
            .str("created_at", &self.created_at)
            .opt_str("last_used_at", self.last_used_at.as_deref());
        match self.key {
            Some(key) => o.str("key", key).end(),
            None => o.end(),
        }
    }
}

impl ApiKey {
    pub fn view<'a>(&'a self, key: Option<&'a str>) -> ApiKeyView<'a> {
        ApiKeyView {
            api_key_id: &self.api_key_id,
            name: &self.name,
            key_prefix: &self.key_prefix,
            created_at: rfc3339(self.created_at),
            last_used_at: self.last_used_at.map(rfc3339),
            key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::parse_json;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_422() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@.example.com",
            "ada@example..com",
            "ada@example.com.",
        ] {
            assert_eq!(normalize_email(bad).unwrap_err().status, 422, "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(normalize_display_name(Some("  Ada ")).unwrap().as_deref(), Some("Ada"));
        assert_eq!(normalize_display_name(Some("   ")).unwrap(), None);
        assert_eq!(normalize_display_name(None).unwrap(), None);
        assert!(normalize_display_name(Some(&"x".repeat(101))).is_err());
        assert!(normalize_display_name(Some("bad\u{0007}")).is_err());
    }

    #[test]
    fn forbidden_fields_in_register_are_rejected() {
        for field in ["role", "is_disabled", "plan", "user_id"] {
            let body = format!(r#"{{"email":"a@b.co","password":"12345678","{field}":"admin"}}"#);
            let err = parse_json::<RegisterRequest>(JSON, body.as_bytes()).unwrap_err();
            assert_eq!(err.status, 422, "{field}");
        }
    }

    #[test]
    fn forbidden_fields_in_profile_updates_are_rejected() {
        let err = parse_json::<UpdateMeRequest>(JSON, br#"{"display_name":"x","role":"admin"}"#).unwrap_err();
        assert_eq!(err.status, 422);
    }

    #[test]
    fn key_names_are_required() {
        assert_eq!(normalize_key_name("  ci key ").unwrap(), "ci key");
        assert!(normalize_key_name("  ").is_err());
    }

    #[test]
    fn admin_emails_match_exactly() {
        let admins = vec!["root@example.com".to_string()];
        assert!(is_admin_email("root@example.com", &admins));
        assert!(!is_admin_email("root@example.co", &admins));
    }
}
