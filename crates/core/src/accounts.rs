//! Accounts: the request bodies of the auth, profile and key endpoints, their validation,
//! and the user and key representations the API returns.

use crate::ids::ApiKeyId;
use crate::scopes::Scopes;
use crate::{time::rfc3339, ApiError};
use serde::{Deserialize, Serialize};

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_KEY_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct RefreshRequest {
    /// Absent when the refresh token travels in the HttpOnly cookie.
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateMeRequest {
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// `DELETE /users/me`: the account goes only with its current password.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct DeleteMeRequest {
    pub current_password: Option<String>,
}

impl DeleteMeRequest {
    /// The current password, or 422 naming it.
    pub fn current_password(&self) -> Result<&str, ApiError> {
        self.current_password
            .as_deref()
            .ok_or_else(|| ApiError::validation("current_password is required to delete the account"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CreateKeyRequest {
    pub name: String,
    /// Names from [`crate::scopes::ALL`]; left out: `["gateway"]`.
    pub scopes: Option<Vec<String>>,
    /// RFC 3339 (any offset); left out: the key never expires.
    pub expires_at: Option<String>,
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

/// What a user may do: `admin`s also reach the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Role::parse(&name).ok_or_else(|| format!("unknown role `{name}`, expected `user` or `admin`"))
    }
}

/// A user as stored (epoch-ms timestamps), without the password hash. Serialized only to
/// hand a running turn to the object that runs it, never as an API view ([`UserView`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub plan: String,
    pub is_disabled: i64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Bumped by every write to the user's conversations: part of every cache key, so a
    /// cached read can never be older than the user's last write.
    #[serde(default)]
    pub cache_version: u64,
}

/// The API's view of a user.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub role: Role,
    pub plan: &'a str,
    pub created_at: String,
    pub updated_at: String,
}

impl User {
    pub fn view(&self) -> UserView<'_> {
        UserView {
            user_id: &self.user_id,
            email: &self.email,
            display_name: self.display_name.as_deref(),
            role: self.role,
            plan: &self.plan,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKey {
    pub api_key_id: ApiKeyId,
    pub name: String,
    pub key_prefix: String,
    pub scopes: Scopes,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub last_used_at: Option<u64>,
}

/// The API's view of a key; `key` is present only in the creation response.
#[derive(Debug, Serialize)]
pub struct ApiKeyView<'a> {
    pub api_key_id: &'a str,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub scopes: Scopes,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
}

impl ApiKey {
    pub fn view<'a>(&'a self, key: Option<&'a str>) -> ApiKeyView<'a> {
        ApiKeyView {
            api_key_id: &self.api_key_id,
            name: &self.name,
            key_prefix: &self.key_prefix,
            scopes: self.scopes,
            created_at: rfc3339(self.created_at),
            expires_at: self.expires_at.map(rfc3339),
            last_used_at: self.last_used_at.map(rfc3339),
            key,
        }
    }
}

/// The answer to register, login and refresh: the user and a fresh token pair.
#[derive(Debug, Serialize)]
pub struct TokenResponse<'a> {
    pub user: UserView<'a>,
    pub access_token: &'a str,
    pub refresh_token: &'a str,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// What a login checks: the user's password hash and whether the account is disabled.
#[derive(Debug, Deserialize)]
pub struct LoginRow {
    pub user_id: String,
    pub password_hash: String,
    pub is_disabled: i64,
}

/// A refresh token with its session and user, as the refresh endpoint reads it.
#[derive(Debug, Deserialize)]
pub struct RefreshRow {
    pub session_id: String,
    pub used_at: Option<u64>,
    pub expires_at: u64,
    pub user_id: String,
    pub revoked_at: Option<u64>,
    pub is_disabled: i64,
}

/// A live API key and its owner, read in one row.
#[derive(Debug, Deserialize)]
pub struct KeyUser {
    pub api_key_id: String,
    pub last_used_at: Option<u64>,
    pub scopes: Scopes,
    #[serde(flatten)]
    pub user: User,
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

    const USER: &str = r#"{"user_id":"usr_1","email":"a@b.example","display_name":null,"role":"user","plan":"free",
        "is_disabled":0,"created_at":1700000000000,"updated_at":1700000000001,"cache_version":3}"#;

    fn rows<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
        crate::body::parse_rows(text)
    }

    #[test]
    fn rows_decode_by_column_name() {
        let users: Vec<User> = rows(&format!("[{USER},{}]", USER.replace("usr_1", "usr_2"))).unwrap();
        assert_eq!(users.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), ["usr_1", "usr_2"]);
        let u = &users[0];
        assert_eq!(
            (u.display_name.as_deref(), u.is_disabled, u.updated_at, u.cache_version),
            (None, 0, 1700000000001, 3)
        );
        assert!(rows::<User>("[]").unwrap().is_empty());
    }

    #[test]
    fn an_optional_column_may_be_absent() {
        let without_version = USER.replace(r#","cache_version":3"#, "");
        assert_eq!(rows::<User>(&format!("[{without_version}]")).unwrap()[0].cache_version, 0);
    }

    #[test]
    fn a_wrong_column_is_named_or_located_without_its_value() {
        let err = |json: String| rows::<User>(&json).err().unwrap();
        assert_eq!(
            err(format!("[{}]", USER.replace(r#""plan":"free","#, ""))),
            "D1 row decode: missing field `plan` at line 2 column 96"
        );
        assert_eq!(
            err(format!("[{}]", USER.replace(r#""email":"a@b.example""#, r#""email":7"#))),
            "D1 row decode: a value of another type where a string belongs, at line 1 column 29"
        );
        assert_eq!(
            err(format!("[{USER},{}]", USER.replace(r#""created_at":1700000000000"#, r#""created_at":-1"#))),
            "D1 row decode: a value of another type where u64 belongs, at line 3 column 39"
        );
        assert_eq!(
            err(format!("[{USER},1]")),
            "D1 row decode: a value of another type where struct User belongs, at line 2 column 98"
        );
        assert_eq!(
            err("{}".into()),
            "D1 row decode: a value of another type where a sequence belongs, at line 1 column 0"
        );
        assert_eq!(err("[".into()), "D1 row decode: not JSON at line 1 column 1");
        let secret = USER.replace(r#""created_at":1700000000000"#, r#""created_at":"secret words""#);
        assert!(!err(format!("[{secret}]")).contains("secret"), "values never reach the message");
    }

    #[test]
    fn a_key_row_carries_its_user() {
        let row = USER.replacen('{', r#"{"api_key_id":"key_1","last_used_at":null,"scopes":"gateway read","#, 1);
        let found: Vec<KeyUser> = rows(&format!("[{row}]")).unwrap();
        assert_eq!((found[0].api_key_id.as_str(), found[0].last_used_at), ("key_1", None));
        assert_eq!(found[0].scopes.to_column(), "gateway read");
        assert_eq!((found[0].user.user_id.as_str(), found[0].user.cache_version), ("usr_1", 3));
    }

    #[test]
    fn views_have_the_documented_shapes() {
        let user = rows::<User>(&format!("[{USER}]")).unwrap().remove(0);
        let view = serde_json::to_value(user.view()).unwrap();
        assert_eq!(
            view,
            serde_json::json!({"user_id":"usr_1","email":"a@b.example","display_name":null,"role":"user","plan":"free",
                "created_at":"2023-11-14T22:13:20.000Z","updated_at":"2023-11-14T22:13:20.001Z"})
        );
        let key = ApiKey {
            api_key_id: serde_json::from_str(r#""key_1""#).unwrap(),
            name: "ci".into(),
            key_prefix: "ek_ab".into(),
            scopes: Scopes::DEFAULT,
            created_at: 0,
            expires_at: Some(86_400_000),
            last_used_at: None,
        };
        let listed = serde_json::to_value(key.view(None)).unwrap();
        assert_eq!(listed["last_used_at"], serde_json::Value::Null);
        assert_eq!(listed["scopes"], serde_json::json!(["gateway"]));
        assert_eq!(listed["expires_at"], "1970-01-02T00:00:00.000Z");
        assert!(listed.get("key").is_none(), "the key itself is shown only at creation");
        assert_eq!(serde_json::to_value(key.view(Some("ek_secret"))).unwrap()["key"], "ek_secret");
    }

    #[test]
    fn roles_are_read_and_written_as_their_names() {
        assert_eq!(rows::<User>(&format!("[{USER}]")).unwrap()[0].role, Role::User);
        let admin = USER.replace(r#""role":"user""#, r#""role":"admin""#);
        assert_eq!(rows::<User>(&format!("[{admin}]")).unwrap()[0].role, Role::Admin);
        let root = USER.replace(r#""role":"user""#, r#""role":"root""#);
        assert_eq!(
            rows::<User>(&format!("[{root}]")).unwrap_err(),
            "D1 row decode: a value of another type where `user` or `admin` belongs, at line 1 column 75"
        );
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), r#""admin""#);
        assert_eq!(Role::Admin.as_str(), "admin");
    }
}
