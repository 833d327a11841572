//! API key scopes: the documented set, how a key's scopes are validated and stored, and the
//! one decision of what a request may do given its route and its credential.

use crate::routes::Route;
use crate::ApiError;
use serde::{Deserialize, Serialize, Serializer};

/// What an API key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The OpenAI-compatible gateway (`/v1/*`).
    Gateway,
    /// Conversations and messages, read and write (a chat turn calls the model).
    Chat,
    /// Read-only access to the user's data: the GET routes of conversations, messages, usage
    /// and the profile.
    Read,
    /// The MCP server's tools (`POST /mcp`), and the tasks and memories they act on.
    Tools,
}

/// Every scope, in the order they are shown.
pub const ALL: [Scope; 4] = [Scope::Gateway, Scope::Chat, Scope::Read, Scope::Tools];

/// Longest a key may live: 366 days from its creation.
pub const MAX_KEY_LIFETIME_MS: u64 = 366 * 86_400_000;

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Gateway => "gateway",
            Scope::Chat => "chat",
            Scope::Read => "read",
            Scope::Tools => "tools",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A key's set of scopes. Stored in D1 as the names separated by spaces (`"gateway chat"`),
/// shown in the API as an array of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Scopes(u8);

impl Scopes {
    /// What a key gets when its creation names no scopes.
    pub const DEFAULT: Scopes = Scopes(1 << Scope::Gateway as u8);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The stored form: names separated by single spaces.
    pub fn to_column(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// The scopes a creation request names: a non-empty array of known names, each once.
    /// `None` (the member left out) gives [`Scopes::DEFAULT`].
    pub fn from_request(names: Option<&[String]>) -> Result<Scopes, ApiError> {
        let Some(names) = names else {
            return Ok(Scopes::DEFAULT);
        };
        let expected = ALL.iter().map(|s| format!("`{}`", s.as_str())).collect::<Vec<_>>().join(", ");
        if names.is_empty() {
            return Err(ApiError::validation(format!("scopes: must name at least one of {expected}")));
        }
        let mut set = 0u8;
        for (i, name) in names.iter().enumerate() {
            // The position, not the value, is named: the message never echoes what was sent.
            let scope = Scope::parse(name).ok_or_else(|| {
                ApiError::validation(format!("scopes[{i}]: unknown scope, expected one of {expected}"))
            })?;
            if set & scope.bit() != 0 {
                return Err(ApiError::validation(format!("scopes: `{}` is listed twice", scope.as_str())));
            }
            set |= scope.bit();
        }
        Ok(Scopes(set))
    }
}

impl TryFrom<String> for Scopes {
    type Error = String;

    fn try_from(column: String) -> Result<Self, String> {
        let mut set = 0u8;
        for name in column.split(' ').filter(|n| !n.is_empty()) {
            set |= Scope::parse(name).ok_or_else(|| format!("unknown scope `{name}`"))?.bit();
        }
        Ok(Scopes(set))
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Scope::as_str))
    }
}

/// What a route asks of the credential that calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (health, register, login, refresh, webhooks).
    Public,
    /// A login session only: never an API key, whatever its scopes (keys, the account's
    /// credentials, billing, admin, logout).
    Session,
    /// A session, or an API key holding any one of these scopes.
    AnyOf(&'static [Scope]),
}

/// The access each route needs. A new route must be placed here (the match is exhaustive).
pub fn access(route: Route) -> Access {
    use Route::*;
    const GATEWAY: Access = Access::AnyOf(&[Scope::Gateway]);
    const CHAT: Access = Access::AnyOf(&[Scope::Chat]);
    const READ: Access = Access::AnyOf(&[Scope::Read, Scope::Chat]);
    // Tasks and memories are what the tools act on: a `tools` key (the MCP server) reaches
    // them over REST too, a `chat` key because chat turns will call the tools, and `read`
    // reads them like the rest of the user's data.
    const AGENT_READ: Access = Access::AnyOf(&[Scope::Read, Scope::Chat, Scope::Tools]);
    const AGENT_WRITE: Access = Access::AnyOf(&[Scope::Chat, Scope::Tools]);
    match route {
        Health | HealthReady | Register | Login | Refresh | StripeWebhook => Access::Public,
        Logout | UpdateMe | DeleteMe | CreateKey | ListKeys | DeleteKey => Access::Session,
        AdminListUsers | AdminUpdateUser | AdminUsage | AdminWebhookEvents | AdminAudit => Access::Session,
        GetMe | GetUsage => Access::AnyOf(&[Scope::Read]),
        ListConversations | GetConversation | ListMessages | StreamTurn => READ,
        CreateConversation | UpdateConversation | DeleteConversation | PostMessage | Regenerate | CancelTurn => CHAT,
        ListModels | GetModel | ChatCompletions | Responses | Embeddings | Messages | CountTokens => GATEWAY,
        ListTasks | GetTask | ListMemories => AGENT_READ,
        CreateTask | UpdateTask | DeleteTask | CreateMemory | DeleteMemory => AGENT_WRITE,
        Mcp => Access::AnyOf(&[Scope::Tools]),
        GetLimits => Access::Public,
        GenerateTitle => CHAT,
    }
}

/// The kind of credential a request authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// An access token of a live login session: full access.
    Session,
    /// An API key with its scopes.
    Key(Scopes),
}

/// Whether `caller` may use `route`: 403 `session_required` for a key on a session-only
/// route, 403 `insufficient_scope` for a key without any scope the route accepts.
pub fn authorize(route: Route, caller: Caller) -> Result<(), ApiError> {
    let Caller::Key(scopes) = caller else {
        return Ok(());
    };
    match access(route) {
        Access::Public => Ok(()),
        Access::Session => Err(ApiError::new(
            403,
            "session_required",
            "API keys cannot be used here: sign in (a session's access token) to manage keys, credentials, the account, billing or admin",
        )),
        Access::AnyOf(needed) if needed.iter().any(|s| scopes.contains(*s)) => Ok(()),
        Access::AnyOf(needed) => {
            let names = needed.iter().map(|s| format!("`{}`", s.as_str())).collect::<Vec<_>>().join(" or ");
            Err(ApiError::new(403, "insufficient_scope", format!("this API key lacks the scope this route needs: {names}")))
        }
    }
}

/// A key's expiry from its creation request: in the future and at most
/// [`MAX_KEY_LIFETIME_MS`] from `now`. `None` never expires.
pub fn expiry(expires_at: Option<&str>, now: u64) -> Result<Option<u64>, ApiError> {
    let Some(text) = expires_at else {
        return Ok(None);
    };
    let at = crate::time::parse_rfc3339(text)
        .ok_or_else(|| ApiError::validation("expires_at: must be an RFC 3339 time like 2027-01-31T00:00:00Z"))?;
    if at <= now {
        return Err(ApiError::validation("expires_at: must be in the future"));
    }
    if at - now > MAX_KEY_LIFETIME_MS {
        return Err(ApiError::validation("expires_at: must be at most 366 days from now"));
    }
    Ok(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(names: &[&str]) -> Caller {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Caller::Key(Scopes::from_request(Some(&names)).unwrap())
    }

    const EVERY: &[&str] = &["gateway", "chat", "read", "tools"];

    #[test]
    fn the_default_is_gateway() {
        assert_eq!(Scopes::from_request(None).unwrap(), Scopes::DEFAULT);
        assert_eq!(Scopes::DEFAULT.to_column(), "gateway");
    }

    #[test]
    fn bad_scope_lists_are_422_naming_the_field() {
        let bad = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let err = Scopes::from_request(Some(&names)).unwrap_err();
            assert_eq!(err.status, 422);
            assert!(err.message.starts_with("scopes"), "{}", err.message);
        };
        bad(&[]);
        bad(&["admin"]);
        bad(&["Gateway"]);
        bad(&["gateway", "gateway"]);
        bad(&[""]);
    }

    #[test]
    fn scopes_round_trip_through_the_column_and_show_as_an_array() {
        let Caller::Key(s) = key(&["read", "gateway"]) else { unreachable!() };
        assert_eq!(s.to_column(), "gateway read");
        assert_eq!(Scopes::try_from(s.to_column()).unwrap(), s);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["gateway","read"]"#);
        assert!(Scopes::try_from("gateway root".to_string()).is_err());
    }

    #[test]
    fn sessions_may_use_every_route() {
        for route in every_route() {
            assert!(authorize(route, Caller::Session).is_ok(), "{route:?}");
        }
    }

    #[test]
    fn keys_never_reach_session_routes_even_with_every_scope() {
        for route in [
            Route::CreateKey,
            Route::ListKeys,
            Route::DeleteKey,
            Route::UpdateMe,
            Route::DeleteMe,
            Route::Logout,
            Route::AdminListUsers,
            Route::AdminUpdateUser,
            Route::AdminUsage,
            Route::AdminWebhookEvents,
            Route::AdminAudit,
        ] {
            let err = authorize(route, key(EVERY)).unwrap_err();
            assert_eq!((err.status, err.code), (403, "session_required"), "{route:?}");
        }
    }

    #[test]
    fn each_scope_opens_its_routes_only() {
        let allowed = |names: &[&str], route| authorize(route, key(names)).is_ok();
        assert!(allowed(&["gateway"], Route::ChatCompletions));
        assert!(allowed(&["gateway"], Route::ListModels));
        assert!(!allowed(&["chat", "read", "tools"], Route::ChatCompletions));
        assert!(!allowed(&["gateway"], Route::ListConversations));
        assert!(allowed(&["read"], Route::ListConversations));
        assert!(allowed(&["read"], Route::ListMessages));
        assert!(allowed(&["read"], Route::GetUsage));
        assert!(!allowed(&["read"], Route::CreateConversation));
        assert!(!allowed(&["read"], Route::PostMessage));
        assert!(allowed(&["chat"], Route::PostMessage));
        assert!(allowed(&["chat"], Route::GetConversation));
        assert!(allowed(&["chat"], Route::DeleteConversation));
        assert!(!allowed(&["tools"], Route::GetConversation));
        assert!(allowed(&["tools"], Route::Mcp));
        assert!(!allowed(&["gateway", "chat", "read"], Route::Mcp));
        for route in [Route::ListTasks, Route::GetTask, Route::ListMemories] {
            assert!(allowed(&["read"], route) && allowed(&["chat"], route) && allowed(&["tools"], route));
            assert!(!allowed(&["gateway"], route));
        }
        for route in [Route::CreateTask, Route::UpdateTask, Route::DeleteTask, Route::CreateMemory, Route::DeleteMemory]
        {
            assert!(allowed(&["chat"], route) && allowed(&["tools"], route));
            assert!(!allowed(&["read"], route) && !allowed(&["gateway"], route));
        }
        let err = authorize(Route::ChatCompletions, key(&["read"])).unwrap_err();
        assert_eq!((err.status, err.code), (403, "insufficient_scope"));
        assert!(err.message.contains("`gateway`"));
    }

    #[test]
    fn expiry_is_optional_future_and_bounded() {
        let now = 1_800_000_000_000;
        assert_eq!(expiry(None, now).unwrap(), None);
        let tomorrow = now + 86_400_000;
        assert_eq!(expiry(Some(&crate::time::rfc3339(tomorrow)), now).unwrap(), Some(tomorrow));
        let last = now + MAX_KEY_LIFETIME_MS;
        assert_eq!(expiry(Some(&crate::time::rfc3339(last)), now).unwrap(), Some(last));
        assert!(expiry(Some(&crate::time::rfc3339(last + 1)), now).is_err());
        for bad in ["2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "tomorrow", "2027-01-15"] {
            assert_eq!(expiry(Some(bad), now).unwrap_err().status, 422, "{bad}");
        }
    }

    fn every_route() -> Vec<Route> {
        crate::routes::table()
            .into_iter()
            .flat_map(|(pattern, methods)| {
                methods.into_iter().map(move |m| {
                    let path = pattern.replace('{', "x").replace('}', "");
                    crate::routes::resolve(m, &path).unwrap().route
                })
            })
            .collect()
    }
}
