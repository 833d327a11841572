//! Conversations and message trees: request bodies, limits and validation, the import plan,
//! and the views the API returns.

use crate::agent::{self, Tool};
use crate::body::nullable;
use crate::ids::{ConversationId, MessageId};
use crate::time::rfc3339;
use crate::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Size and count limits (configurable through variables, see `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub title_chars: usize,
    pub system_prompt_bytes: usize,
    pub message_bytes: usize,
    pub conversations_per_user: u64,
    pub messages_per_conversation: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            title_chars: 200,
            system_prompt_bytes: 8 * 1024,
            message_bytes: 32 * 1024,
            conversations_per_user: 10_000,
            messages_per_conversation: 1_000,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CreateConversation {
    pub title: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    /// Built-in tool names the conversation offers; absent or `null` is every built-in.
    pub tools: Option<Vec<String>>,
    /// History to import, oldest first.
    #[serde(default)]
    pub messages: Vec<ImportMessage>,
}

/// One imported turn. `id` is a label local to the request; `parent_id` names an earlier
/// item's label, `null` makes a root, and absent means "the previous item".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct ImportMessage {
    pub id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub parent_id: Option<Option<String>>,
    pub role: String,
    pub content: String,
}

/// A partial update: `system_prompt` and `tools` tell absent (keep) from `null` (clear, which
/// for `tools` is back to the default: every built-in).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateConversation {
    pub title: Option<String>,
    pub model: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub tools: Option<Option<Vec<String>>>,
}

/// A conversation's tool list as the client sent it, checked: built-in names only, each at
/// most once (a repeated name is refused, not collapsed, so that a typo'd list is noticed).
/// The error names the offending item (`tools[2]`).
pub fn validate_tools(names: &[String]) -> Result<Vec<Tool>, ApiError> {
    if names.len() > agent::ALL.len() {
        return Err(ApiError::validation(format!("tools: at most {} tools (the built-ins)", agent::ALL.len())));
    }
    let mut tools: Vec<Tool> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some(tool) = Tool::parse(name) else {
            let known: Vec<&str> = agent::ALL.iter().map(|t| t.name()).collect();
            return Err(ApiError::validation(format!(
                "tools[{i}]: unknown tool; the built-in tools are {}",
                known.join(", ")
            )));
        };
        if tools.contains(&tool) {
            return Err(ApiError::validation(format!("tools[{i}]: {name} is listed twice")));
        }
        tools.push(tool);
    }
    Ok(tools)
}

/// The stored form of a tool list (the `tools` column): names separated by spaces, `""` for
/// none. The column is NULL for the default.
pub fn encode_tools(tools: &[Tool]) -> String {
    tools.iter().map(|t| t.name()).collect::<Vec<_>>().join(" ")
}

/// The tools a conversation offers, from its stored `tools` column: every built-in when NULL,
/// else the listed ones in their order (a name no longer built in is dropped).
pub fn offered_tools(stored: Option<&str>) -> Vec<Tool> {
    match stored {
        None => agent::ALL.to_vec(),
        Some(names) => names.split_whitespace().filter_map(Tool::parse).collect(),
    }
}

/// A title: trimmed, at most `limits.title_chars` characters, no control characters.
pub fn validate_title(raw: &str, limits: &Limits) -> Result<String, ApiError> {
    let title = raw.trim();
    if title.chars().count() > limits.title_chars {
        return Err(ApiError::validation(format!("title must be at most {} characters", limits.title_chars)));
    }
    if title.chars().any(char::is_control) {
        return Err(ApiError::validation("title must not contain control characters"));
    }
    Ok(title.to_string())
}

/// A system prompt: at most `limits.system_prompt_bytes` bytes; empty means none.
pub fn validate_system_prompt(raw: Option<&str>, limits: &Limits) -> Result<Option<String>, ApiError> {
    match raw {
        Some(p) if p.len() > limits.system_prompt_bytes => {
            Err(ApiError::validation(format!("system_prompt must be at most {} bytes", limits.system_prompt_bytes)))
        }
        Some(p) if !p.trim().is_empty() => Ok(Some(p.to_string())),
        _ => Ok(None),
    }
}

/// Message content: not blank, at most `limits.message_bytes` bytes.
pub fn validate_content(content: &str, limits: &Limits) -> Result<(), ApiError> {
    if content.trim().is_empty() {
        return Err(ApiError::validation("content must not be empty"));
    }
    if content.len() > limits.message_bytes {
        return Err(ApiError::validation(format!("content must be at most {} bytes", limits.message_bytes)));
    }
    Ok(())
}

/// A model name: 1 to 100 characters of `A-Z a-z 0-9 . _ : / @ -`.
pub fn validate_model_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:/@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation("model must be 1 to 100 characters of letters, digits and . _ : / @ -"))
    }
}

/// One message of a validated import: its position and its parent's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMessage {
    pub parent_index: Option<usize>,
    pub role: &'static str,
    pub content: String,
}

/// Validates an import and resolves its parent references to positions. Parents must come
/// earlier in the array, so the result is a forest in insertion order.
pub fn plan_import(messages: Vec<ImportMessage>, limits: &Limits) -> Result<Vec<PlannedMessage>, ApiError> {
    if messages.len() as u64 > limits.messages_per_conversation {
        return Err(ApiError::validation(format!(
            "messages: at most {} messages per conversation",
            limits.messages_per_conversation
        )));
    }
    let mut labels: Vec<Option<String>> = Vec::with_capacity(messages.len());
    let mut planned = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => "user",
            "assistant" => "assistant",
            _ => return Err(ApiError::validation(format!("messages[{i}].role must be \"user\" or \"assistant\""))),
        };
        validate_content(&m.content, limits)
            .map_err(|e| ApiError::validation(format!("messages[{i}].{}", e.message)))?;
        if let Some(id) = &m.id {
            if id.is_empty() || id.len() > 100 || labels.iter().flatten().any(|l| l == id) {
                return Err(ApiError::validation(format!("messages[{i}].id must be unique and 1 to 100 characters")));
            }
        }
        let parent_index = match &m.parent_id {
            None => i.checked_sub(1),
            Some(None) => None,
            Some(Some(parent)) => {
                Some(labels.iter().position(|l| l.as_deref() == Some(parent.as_str())).ok_or_else(|| {
                    ApiError::validation(format!("messages[{i}].parent_id must name the id of an earlier message"))
                })?)
            }
        };
        labels.push(m.id);
        planned.push(PlannedMessage { parent_index, role, content: m.content });
    }
    Ok(planned)
}

/// One imported message as the import statement reads it (a member of a JSON array).
#[derive(Debug, Serialize)]
pub struct ImportedRow<'a> {
    pub message_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub role: &'static str,
    pub content: &'a str,
    pub created_at: u64,
}

/// A conversation as stored.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    pub conversation_id: ConversationId,
    pub title: String,
    pub model: String,
    pub system_prompt: Option<String>,
    /// The stored tool list (see [`encode_tools`]); NULL means every built-in.
    #[serde(default)]
    pub tools: Option<String>,
    pub message_count: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Serialize)]
pub struct ConversationView<'a> {
    pub conversation_id: &'a str,
    pub title: &'a str,
    pub model: &'a str,
    pub system_prompt: Option<&'a str>,
    /// The tools it offers (every built-in unless set).
    pub tools: Vec<&'static str>,
    pub message_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Conversation {
    /// The tools this conversation offers (for the agent loop).
    pub fn offered_tools(&self) -> Vec<Tool> {
        offered_tools(self.tools.as_deref())
    }

    pub fn view(&self) -> ConversationView<'_> {
        ConversationView {
            conversation_id: &self.conversation_id,
            title: &self.title,
            model: &self.model,
            system_prompt: self.system_prompt.as_deref(),
            tools: self.offered_tools().into_iter().map(Tool::name).collect(),
            message_count: self.message_count,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// A message as stored (serialized only between the Worker and the turn object).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<MessageId>,
    pub role: String,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub is_usage_estimated: i64,
    pub time_to_first_token_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub created_at: u64,
    /// An agent turn's steps (JSON, see [`crate::agent::turn::Step`]); NULL for a plain answer.
    #[serde(default)]
    pub steps: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UsageView {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub is_estimated: bool,
}

#[derive(Debug, Serialize)]
pub struct MessageView<'a> {
    pub message_id: &'a str,
    pub conversation_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub role: &'a str,
    pub content: &'a str,
    pub status: &'a str,
    pub model: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub usage: Option<UsageView>,
    pub time_to_first_token_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub created_at: String,
    /// The tool steps of an agent turn, as stored; `[]` for any other message.
    #[serde(serialize_with = "steps_or_empty")]
    pub steps: Option<&'a RawValue>,
}

fn steps_or_empty<S: serde::Serializer>(steps: &Option<&RawValue>, s: S) -> Result<S::Ok, S::Error> {
    match steps {
        Some(raw) => raw.serialize(s),
        None => s.collect_seq(std::iter::empty::<()>()),
    }
}

impl Message {
    pub fn view(&self) -> MessageView<'_> {
        let usage = match (self.prompt_tokens, self.completion_tokens) {
            (Some(p), Some(c)) => Some(UsageView {
                prompt_tokens: p,
                completion_tokens: c,
                total_tokens: p + c,
                is_estimated: self.is_usage_estimated != 0,
            }),
            _ => None,
        };
        MessageView {
            message_id: &self.message_id,
            conversation_id: &self.conversation_id,
            parent_id: self.parent_id.as_deref(),
            role: &self.role,
            content: &self.content,
            status: &self.status,
            model: self.model.as_deref(),
            provider: self.provider.as_deref(),
            usage,
            time_to_first_token_ms: self.time_to_first_token_ms,
            duration_ms: self.duration_ms,
            created_at: rfc3339(self.created_at),
            steps: self.steps.as_deref().and_then(|s| serde_json::from_str::<&RawValue>(s).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::parse_json;

    const JSON: Option<&str> = Some("application/json");
    fn limits() -> Limits {
        Limits::default()
    }

    fn import(json: &str) -> Result<Vec<PlannedMessage>, ApiError> {
        let req: CreateConversation = parse_json(JSON, json.as_bytes())?;
        plan_import(req.messages, &limits())
    }

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters() {
        assert_eq!(validate_title("  Plans  ", &limits()).unwrap(), "Plans");
        assert!(validate_title(&"é".repeat(200), &limits()).is_ok());
        assert_eq!(validate_title(&"x".repeat(201), &limits()).unwrap_err().status, 422);
        assert!(validate_title("a\u{0}b", &limits()).is_err());
    }

    #[test]
    fn system_prompts_and_contents_are_bounded_in_bytes() {
        assert!(validate_system_prompt(Some(&"x".repeat(8192)), &limits()).is_ok());
        assert!(validate_system_prompt(Some(&"x".repeat(8193)), &limits()).is_err());
        assert_eq!(validate_system_prompt(Some("  "), &limits()).unwrap(), None);
        assert!(validate_content(&"x".repeat(32 * 1024), &limits()).is_ok());
        assert!(validate_content(&"x".repeat(32 * 1024 + 1), &limits()).is_err());
        assert!(validate_content(" \n ", &limits()).is_err());
    }

    #[test]
    fn model_names_are_restricted_to_safe_characters() {
        assert!(validate_model_name("gpt-4o-mini").is_ok());
        assert!(validate_model_name("@cf/meta/llama-3.1-8b-instruct").is_ok());
        assert!(validate_model_name("").is_err());
        assert!(validate_model_name("a b").is_err());
        assert!(validate_model_name(&"m".repeat(101)).is_err());
    }

    #[test]
    fn an_import_without_parents_is_a_linear_history() {
        let plan = import(r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"bye"}]}"#).unwrap();
        let parents: Vec<_> = plan.iter().map(|m| m.parent_index).collect();
        assert_eq!(parents, vec![None, Some(0), Some(1)]);
        assert_eq!(plan[1].role, "assistant");
    }

    #[test]
    fn an_import_can_branch_with_local_ids() {
        let plan = import(
            r#"{"messages":[{"id":"q","role":"user","content":"q"},{"id":"a1","role":"assistant","content":"a1"},
                {"id":"a2","parent_id":"q","role":"assistant","content":"a2"},{"parent_id":null,"role":"user","content":"new root"}]}"#,
        )
        .unwrap();
        let parents: Vec<_> = plan.iter().map(|m| m.parent_index).collect();
        assert_eq!(parents, vec![None, Some(0), Some(0), None]);
    }

    #[test]
    fn bad_imports_are_422() {
        for bad in [
            r#"{"messages":[{"role":"system","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":""}]}"#,
            r#"{"messages":[{"role":"user","content":"a","parent_id":"later"},{"id":"later","role":"user","content":"b"}]}"#,
            r#"{"messages":[{"id":"x","role":"user","content":"a"},{"id":"x","role":"user","content":"b"}]}"#,
            r#"{"messages":[{"role":"user","content":"a","extra":1}]}"#,
            r#"{"messages":[{"role":"user"}]}"#,
        ] {
            assert_eq!(import(bad).unwrap_err().status, 422, "{bad}");
        }
        let too_many = Limits { messages_per_conversation: 2, ..limits() };
        let req: CreateConversation =
            parse_json(JSON, br#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":"c"}]}"#).unwrap();
        assert!(plan_import(req.messages, &too_many).is_err());
    }

    #[test]
    fn nullable_and_signed_columns() {
        let row = r#"[{"message_id":"m","conversation_id":"c","parent_id":null,"role":"user","content":"hi","status":"complete",
            "model":null,"provider":null,"prompt_tokens":null,"completion_tokens":5,"is_usage_estimated":1,
            "time_to_first_token_ms":null,"duration_ms":null,"created_at":1}]"#;
        let m = &crate::body::parse_rows::<Message>(row).unwrap()[0];
        assert_eq!(
            (m.parent_id.as_deref(), m.prompt_tokens, m.completion_tokens, m.is_usage_estimated),
            (None, None, Some(5), 1)
        );
        let wrong = row.replace(r#""completion_tokens":5"#, r#""completion_tokens":"x""#);
        assert!(crate::body::parse_rows::<Message>(&wrong).unwrap_err().contains("where u64 belongs"));
    }

    #[test]
    fn message_views_show_usage_only_when_both_counts_are_known() {
        let row = r#"[{"message_id":"m","conversation_id":"c","parent_id":"p","role":"assistant","content":"hi","status":"complete",
            "model":"sim-small","provider":"openai","prompt_tokens":3,"completion_tokens":5,"is_usage_estimated":1,
            "time_to_first_token_ms":null,"duration_ms":40,"created_at":0}]"#;
        let mut m = crate::body::parse_rows::<Message>(row).unwrap().remove(0);
        assert_eq!(
            serde_json::to_value(m.view()).unwrap(),
            serde_json::json!({"message_id":"m","conversation_id":"c","parent_id":"p","role":"assistant","content":"hi",
                "status":"complete","model":"sim-small","provider":"openai",
                "usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,"is_estimated":true},
                "time_to_first_token_ms":null,"duration_ms":40,"created_at":"1970-01-01T00:00:00.000Z","steps":[]})
        );
        m.prompt_tokens = None;
        assert_eq!(serde_json::to_value(m.view()).unwrap()["usage"], serde_json::Value::Null);
        m.steps = Some(r#"[{"text":"a","tool_calls":[]}]"#.into());
        assert_eq!(serde_json::to_value(m.view()).unwrap()["steps"], serde_json::json!([{"text":"a","tool_calls":[]}]));
    }

    #[test]
    fn tool_lists_are_built_in_names_at_most_once() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(validate_tools(&[]).unwrap(), vec![]);
        assert_eq!(validate_tools(&names(&["recall", "add_task"])).unwrap(), vec![Tool::Recall, Tool::AddTask]);
        let unknown = validate_tools(&names(&["recall", "add_task", "rm_rf"])).unwrap_err();
        assert_eq!(unknown.status, 422);
        assert!(unknown.message.starts_with("tools[2]: unknown tool"), "{}", unknown.message);
        let twice = validate_tools(&names(&["recall", "recall"])).unwrap_err();
        assert!(twice.message.starts_with("tools[1]:"), "{}", twice.message);
        let all: Vec<String> = agent::ALL.iter().map(|t| t.name().to_string()).collect();
        assert_eq!(validate_tools(&all).unwrap(), agent::ALL.to_vec());
        let mut too_many = all.clone();
        too_many.push("recall".into());
        assert!(validate_tools(&too_many).unwrap_err().message.starts_with("tools:"));
    }

    #[test]
    fn stored_tool_lists_round_trip_and_null_is_every_built_in() {
        assert_eq!(offered_tools(None), agent::ALL.to_vec());
        assert_eq!(offered_tools(Some("")), vec![]);
        let some = [Tool::Forget, Tool::ListTasks];
        assert_eq!(offered_tools(Some(&encode_tools(&some))), some.to_vec());
        assert_eq!(offered_tools(Some("recall retired_tool")), vec![Tool::Recall]);
        let all = encode_tools(&agent::ALL);
        assert_eq!(offered_tools(Some(&all)), agent::ALL.to_vec());
    }

    #[test]
    fn create_and_update_tell_absent_null_and_empty_tools() {
        let create: CreateConversation = parse_json(JSON, br#"{"tools":null}"#).unwrap();
        assert_eq!(create.tools, None);
        let create: CreateConversation = parse_json(JSON, br#"{"tools":[]}"#).unwrap();
        assert_eq!(create.tools, Some(vec![]));
        let update: UpdateConversation = parse_json(JSON, br#"{"tools":null}"#).unwrap();
        assert_eq!(update.tools, Some(None));
        let update: UpdateConversation = parse_json(JSON, br#"{"title":"t"}"#).unwrap();
        assert_eq!(update.tools, None);
        assert_eq!(parse_json::<UpdateConversation>(JSON, br#"{"tools":"recall"}"#).unwrap_err().status, 422);
    }

    #[test]
    fn updates_tell_absent_from_null() {
        let absent: UpdateConversation = parse_json(JSON, br#"{"title":"t"}"#).unwrap();
        assert!(absent.system_prompt.is_none());
        let null: UpdateConversation = parse_json(JSON, br#"{"system_prompt":null}"#).unwrap();
        assert_eq!(null.system_prompt, Some(None));
        assert_eq!(parse_json::<UpdateConversation>(JSON, br#"{"user_id":"x"}"#).unwrap_err().status, 422);
    }
}

/// KV keys of the read-through cache. Each carries the user's cache version, which every
/// write bumps in D1, so a key never outlives the data it was made from. The leading `v2`
/// names the shape of the cached view (it changes when the view gains a member).
pub mod cache_keys {
    pub fn list_first_page(user_id: &str, cache_version: u64, limit: u32) -> String {
        format!("v2:conversations:{user_id}:{cache_version}:first:{limit}")
    }

    pub fn conversation(user_id: &str, cache_version: u64, conversation_id: &str) -> String {
        format!("v2:conversation:{user_id}:{cache_version}:{conversation_id}")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn keys_are_scoped_by_user_and_version() {
            assert_ne!(list_first_page("usr_a", 1, 20), list_first_page("usr_b", 1, 20));
            assert_ne!(list_first_page("usr_a", 1, 20), list_first_page("usr_a", 2, 20));
            assert_ne!(list_first_page("usr_a", 1, 20), list_first_page("usr_a", 1, 50));
            assert_ne!(conversation("usr_a", 1, "cnv_x"), conversation("usr_a", 2, "cnv_x"));
        }
    }
}
