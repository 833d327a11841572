//! The route table: which method and path pattern maps to which [`Route`], with 404 and 405
//! decided here so every route answers them the same way.

use crate::ApiError;

/// Every endpoint the Worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    HealthReady,
    Register,
    Login,
    Refresh,
    Logout,
    GetMe,
    UpdateMe,
    DeleteMe,
    CreateKey,
    ListKeys,
    DeleteKey,
    CreateConversation,
    ListConversations,
    GetConversation,
    UpdateConversation,
    DeleteConversation,
    ListMessages,
    PostMessage,
    Regenerate,
    /// A running or finished turn's events, from where a reader left off.
    StreamTurn,
    /// Stops a running turn from anywhere.
    CancelTurn,
    ListModels,
    GetModel,
    ChatCompletions,
    /// OpenAI's Responses API, stateless.
    Responses,
    Embeddings,
    /// Anthropic Messages.
    Messages,
    /// A Messages prompt's estimated tokens.
    CountTokens,
    StripeWebhook,
    GetUsage,
    AdminListUsers,
    AdminUpdateUser,
    AdminUsage,
    AdminWebhookEvents,
    AdminAudit,
    CreateTask,
    ListTasks,
    GetTask,
    UpdateTask,
    DeleteTask,
    CreateMemory,
    ListMemories,
    DeleteMemory,
    Mcp,
    /// The size limits a client checks input against before sending it.
    GetLimits,
    /// Names a conversation after its first answer (one short model call).
    GenerateTitle,
}

/// One path pattern and the methods it answers. `{name}` segments capture a parameter.
struct Entry {
    pattern: &'static str,
    methods: &'static [(&'static str, Route)],
}

const TABLE: &[Entry] = &[
    Entry { pattern: "/health", methods: &[("GET", Route::Health)] },
    Entry { pattern: "/health/ready", methods: &[("GET", Route::HealthReady)] },
    Entry { pattern: "/api/v1/auth/register", methods: &[("POST", Route::Register)] },
    Entry { pattern: "/api/v1/auth/login", methods: &[("POST", Route::Login)] },
    Entry { pattern: "/api/v1/auth/refresh", methods: &[("POST", Route::Refresh)] },
    Entry { pattern: "/api/v1/auth/logout", methods: &[("POST", Route::Logout)] },
    Entry {
        pattern: "/api/v1/users/me",
        methods: &[("GET", Route::GetMe), ("PATCH", Route::UpdateMe), ("DELETE", Route::DeleteMe)],
    },
    Entry { pattern: "/api/v1/keys", methods: &[("POST", Route::CreateKey), ("GET", Route::ListKeys)] },
    Entry { pattern: "/api/v1/keys/{api_key_id}", methods: &[("DELETE", Route::DeleteKey)] },
    Entry {
        pattern: "/api/v1/conversations",
        methods: &[("POST", Route::CreateConversation), ("GET", Route::ListConversations)],
    },
    Entry {
        pattern: "/api/v1/conversations/{conversation_id}",
        methods: &[
            ("GET", Route::GetConversation),
            ("PATCH", Route::UpdateConversation),
            ("DELETE", Route::DeleteConversation),
        ],
    },
    Entry {
        pattern: "/api/v1/conversations/{conversation_id}/messages",
        methods: &[("GET", Route::ListMessages), ("POST", Route::PostMessage)],
    },
    Entry {
        pattern: "/api/v1/conversations/{conversation_id}/messages/{message_id}/regenerate",
        methods: &[("POST", Route::Regenerate)],
    },
    Entry {
        pattern: "/api/v1/conversations/{conversation_id}/messages/{message_id}/stream",
        methods: &[("GET", Route::StreamTurn)],
    },
    Entry {
        pattern: "/api/v1/conversations/{conversation_id}/messages/{message_id}/cancel",
        methods: &[("POST", Route::CancelTurn)],
    },
    Entry { pattern: "/v1/models", methods: &[("GET", Route::ListModels)] },
    Entry { pattern: "/v1/models/{model}", methods: &[("GET", Route::GetModel)] },
    Entry { pattern: "/v1/chat/completions", methods: &[("POST", Route::ChatCompletions)] },
    Entry { pattern: "/v1/responses", methods: &[("POST", Route::Responses)] },
    Entry { pattern: "/v1/embeddings", methods: &[("POST", Route::Embeddings)] },
    Entry { pattern: "/v1/messages", methods: &[("POST", Route::Messages)] },
    Entry { pattern: "/v1/messages/count_tokens", methods: &[("POST", Route::CountTokens)] },
    Entry { pattern: "/api/v1/webhooks/stripe", methods: &[("POST", Route::StripeWebhook)] },
    Entry { pattern: "/api/v1/usage", methods: &[("GET", Route::GetUsage)] },
    Entry { pattern: "/api/v1/admin/users", methods: &[("GET", Route::AdminListUsers)] },
    Entry { pattern: "/api/v1/admin/users/{user_id}", methods: &[("PATCH", Route::AdminUpdateUser)] },
    Entry { pattern: "/api/v1/admin/usage", methods: &[("GET", Route::AdminUsage)] },
    Entry { pattern: "/api/v1/admin/webhook-events", methods: &[("GET", Route::AdminWebhookEvents)] },
    Entry { pattern: "/api/v1/admin/audit", methods: &[("GET", Route::AdminAudit)] },
    Entry { pattern: "/api/v1/tasks", methods: &[("POST", Route::CreateTask), ("GET", Route::ListTasks)] },
    Entry {
        pattern: "/api/v1/tasks/{task_id}",
        methods: &[("GET", Route::GetTask), ("PATCH", Route::UpdateTask), ("DELETE", Route::DeleteTask)],
    },
    Entry { pattern: "/api/v1/memories", methods: &[("POST", Route::CreateMemory), ("GET", Route::ListMemories)] },
    Entry { pattern: "/api/v1/memories/{memory_id}", methods: &[("DELETE", Route::DeleteMemory)] },
    // POST only: no server-to-client stream is offered, so GET (and DELETE) answer 405.
    Entry { pattern: "/mcp", methods: &[("POST", Route::Mcp)] },
    Entry { pattern: "/api/v1/limits", methods: &[("GET", Route::GetLimits)] },
    Entry { pattern: "/api/v1/conversations/{conversation_id}/title", methods: &[("POST", Route::GenerateTitle)] },
];

/// A resolved request: the route, its pattern (for logs) and captured path parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched<'p> {
    pub route: Route,
    pub pattern: &'static str,
    pub params: Vec<(&'static str, &'p str)>,
}

impl<'p> Matched<'p> {
    /// A captured parameter by name (every name in a pattern is always captured).
    pub fn param(&self, name: &str) -> &'p str {
        self.params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v)
    }
}

/// Resolves `method` + `path`; `HEAD` is answered wherever `GET` is.
///
/// Errors: 404 `route_not_found` when no pattern matches; 405 with `Allow` when the pattern
/// matches but the method does not. The matched pattern is returned alongside for logging.
pub fn resolve<'p>(method: &str, path: &'p str) -> Result<Matched<'p>, (Option<&'static str>, ApiError)> {
    let wanted = if method == "HEAD" { "GET" } else { method };
    for entry in TABLE {
        let Some(params) = match_pattern(entry.pattern, path) else {
            continue;
        };
        return match entry.methods.iter().find(|(m, _)| *m == wanted) {
            Some((_, route)) => Ok(Matched { route: *route, pattern: entry.pattern, params }),
            None => {
                let allowed: Vec<&str> = entry.methods.iter().map(|(m, _)| *m).collect();
                Err((Some(entry.pattern), ApiError::method_not_allowed(&allowed)))
            }
        };
    }
    Err((None, ApiError::route_not_found()))
}

/// Every pattern with its methods, in table order (for the API document's consistency test).
pub fn table() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLE.iter().map(|e| (e.pattern, e.methods.iter().map(|(m, _)| *m).collect())).collect()
}

/// The pattern a path would match, whatever the method (for preflight and logging).
pub fn pattern_of(path: &str) -> Option<&'static str> {
    TABLE.iter().find(|e| match_pattern(e.pattern, path).is_some()).map(|e| e.pattern)
}

fn match_pattern<'p>(pattern: &'static str, path: &'p str) -> Option<Vec<(&'static str, &'p str)>> {
    let mut params = Vec::new();
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(s)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if s.is_empty() {
                        return None;
                    }
                    params.push((name, s));
                } else if p != s {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_resolve_to_their_route() {
        assert_eq!(resolve("GET", "/health").unwrap().route, Route::Health);
        assert_eq!(resolve("GET", "/health/ready").unwrap().route, Route::HealthReady);
        assert_eq!(resolve("HEAD", "/health").unwrap().route, Route::Health);
        assert_eq!(resolve("PATCH", "/api/v1/users/me").unwrap().route, Route::UpdateMe);
        let key = resolve("DELETE", "/api/v1/keys/key_abc").unwrap();
        assert_eq!((key.route, key.param("api_key_id")), (Route::DeleteKey, "key_abc"));
    }

    #[test]
    fn an_unknown_path_is_404() {
        for path in ["/", "/nope", "/health/", "/health/ready/x", "/HEALTH", ""] {
            let (pattern, err) = resolve("GET", path).unwrap_err();
            assert_eq!((pattern, err.status, err.code), (None, 404, "route_not_found"), "{path}");
        }
    }

    #[test]
    fn a_wrong_method_is_405_with_allow() {
        let (pattern, err) = resolve("POST", "/health").unwrap_err();
        assert_eq!(pattern, Some("/health"));
        assert_eq!(err.status, 405);
        assert_eq!(err.headers, vec![("allow", "GET".to_string())]);
    }

    #[test]
    fn parameters_are_captured_and_never_empty() {
        let params = match_pattern("/a/{id}/b/{other}", "/a/x1/b/y2").unwrap();
        assert_eq!(params, vec![("id", "x1"), ("other", "y2")]);
        assert!(match_pattern("/a/{id}", "/a/").is_none());
        assert!(match_pattern("/a/{id}", "/a/x/y").is_none());
    }

    #[test]
    fn every_pattern_is_unique_and_rooted() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(a.pattern.starts_with('/'));
            for b in &TABLE[i + 1..] {
                assert_ne!(a.pattern, b.pattern);
            }
        }
    }
}
