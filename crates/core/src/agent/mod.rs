//! The built-in tools: each one's name, description and input schema, the pure validation of
//! its arguments (a tool error for the model, never a panic), and the size cap of results.
//! The executors that run a validated [`Call`] on the caller's rows live at the edge.
//!
//! The input schemas are generated from the input types by `schemars` (derive) into
//! `tools.json`, which the binary embeds as is: a unit test regenerates them and fails when
//! the file is stale (`UPDATE_TOOL_SCHEMAS=1 cargo test -p edgechat-core agent` rewrites it),
//! so the schemas are never written by hand and schemars stays out of the wasm.

pub mod memories;
pub mod tasks;
pub mod turn;

use crate::ids::{MemoryId, TaskId};
use crate::llm::ToolDef;
use crate::ApiError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Every tool's `{name, description, inputSchema}`, generated (see the module's comment).
pub const TOOLS_JSON: &str = include_str!("tools.json");

/// A tool's entry of [`TOOLS_JSON`], its schema borrowed as written there.
#[derive(Deserialize)]
struct Entry<'a> {
    name: &'a str,
    #[serde(rename = "inputSchema", borrow)]
    input_schema: &'a RawValue,
}

/// The tools `offered`, in that order, as the model is told about them: each one's name,
/// description and input schema (borrowed from [`TOOLS_JSON`], never serialized again).
pub fn definitions(offered: &[Tool]) -> Vec<ToolDef<'static>> {
    if offered.is_empty() {
        return Vec::new();
    }
    // TOOLS_JSON is generated and checked by a unit test: it always reads.
    let entries: Vec<Entry<'static>> = serde_json::from_str(TOOLS_JSON).unwrap_or_default();
    offered
        .iter()
        .filter_map(|tool| {
            let entry = entries.iter().find(|e| e.name == tool.name())?;
            Some(ToolDef { name: tool.name(), description: tool.description(), parameters: entry.input_schema })
        })
        .collect()
}

/// Longest text a tool returns; lists are cut to fit (`truncated: true`).
pub const MAX_RESULT_BYTES: usize = 8 * 1024;

/// Most conversations one `search_conversations` call returns.
pub const MAX_CONVERSATION_HITS: u32 = 10;

/// How many tasks and memories one user may keep (`MAX_TASKS_PER_USER`,
/// `MAX_MEMORIES_PER_USER`), so that no user or key can fill the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub tasks_per_user: u64,
    pub memories_per_user: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Self { tasks_per_user: 1_000, memories_per_user: 1_000 }
    }
}

impl Caps {
    /// The refusal of a task over the cap: 409 over REST, the same words as a tool error.
    pub fn tasks_reached(&self) -> ApiError {
        ApiError::conflict(
            "task_limit_reached",
            format!("at most {} tasks per user: delete some first", self.tasks_per_user),
        )
    }

    /// The refusal of a memory over the cap (see [`Caps::tasks_reached`]).
    pub fn memories_reached(&self) -> ApiError {
        ApiError::conflict(
            "memory_limit_reached",
            format!("at most {} memories per user: forget some first", self.memories_per_user),
        )
    }
}

/// A built-in tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    AddTask,
    ListTasks,
    UpdateTask,
    CompleteTask,
    DeleteTask,
    Remember,
    Recall,
    Forget,
    SearchConversations,
}

/// Every tool, in the order they are listed.
pub const ALL: [Tool; 9] = [
    Tool::AddTask,
    Tool::ListTasks,
    Tool::UpdateTask,
    Tool::CompleteTask,
    Tool::DeleteTask,
    Tool::Remember,
    Tool::Recall,
    Tool::Forget,
    Tool::SearchConversations,
];

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::AddTask => "add_task",
            Tool::ListTasks => "list_tasks",
            Tool::UpdateTask => "update_task",
            Tool::CompleteTask => "complete_task",
            Tool::DeleteTask => "delete_task",
            Tool::Remember => "remember",
            Tool::Recall => "recall",
            Tool::Forget => "forget",
            Tool::SearchConversations => "search_conversations",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Tool::AddTask => "Add a task to the user's to-do list. Returns the stored task with its task_id.",
            Tool::ListTasks => "List the user's tasks, newest first, optionally only open or done ones or those due before a time.",
            Tool::UpdateTask => "Change a task's title, notes, due time or status. Only the members given change.",
            Tool::CompleteTask => "Mark a task as done.",
            Tool::DeleteTask => "Delete a task for good.",
            Tool::Remember => "Keep a short note about the user (a preference, a fact) for later conversations.",
            Tool::Recall => "Full-text search over the notes kept about the user, best match first.",
            Tool::Forget => "Delete a note kept about the user.",
            Tool::SearchConversations => "Full-text search over the user's own past conversations (titles and messages); returns matching conversations, best first.",
        }
    }

    pub fn parse(name: &str) -> Option<Tool> {
        ALL.into_iter().find(|t| t.name() == name)
    }

    /// Decodes and checks `arguments` (JSON text; empty means `{}`) into a [`Call`].
    pub fn validate(self, arguments: &str) -> Result<Call, ToolError> {
        let args = if arguments.trim().is_empty() { "{}" } else { arguments };
        let call = match self {
            Tool::AddTask => Call::AddTask(decode::<tasks::AddTask>(args)?.validate()?),
            Tool::ListTasks => {
                let (filter, limit) = decode::<tasks::ListTasks>(args)?.validate()?;
                Call::ListTasks { filter, limit }
            }
            Tool::UpdateTask => {
                let (task_id, changes) = decode::<tasks::UpdateTask>(args)?.split()?;
                Call::UpdateTask { task_id, changes }
            }
            Tool::CompleteTask => Call::CompleteTask(tasks::task_id(&decode::<tasks::TaskRef>(args)?.task_id)?),
            Tool::DeleteTask => Call::DeleteTask(tasks::task_id(&decode::<tasks::TaskRef>(args)?.task_id)?),
            Tool::Remember => Call::Remember(decode::<memories::Remember>(args)?.validate()?),
            Tool::Recall => {
                let (fts, limit) = decode::<memories::Recall>(args)?.validate()?;
                Call::Recall { fts, limit }
            }
            Tool::Forget => Call::Forget(decode::<memories::Forget>(args)?.validate()?),
            Tool::SearchConversations => {
                let input = decode::<SearchConversations>(args)?;
                let fts =
                    crate::search::fts_query(&input.query).map_err(|e| ToolError(format!("query: {}", e.message)))?;
                let limit = input.limit.unwrap_or(5);
                if !(1..=MAX_CONVERSATION_HITS).contains(&limit) {
                    return Err(ToolError(format!("limit: must be from 1 to {MAX_CONVERSATION_HITS}")));
                }
                Call::SearchConversations { fts, limit }
            }
        };
        Ok(call)
    }
}

/// `search_conversations`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct SearchConversations {
    /// Words to look for (every word must match; the last may be a prefix).
    pub query: String,
    /// How many conversations, 1 to 10 (default 5).
    pub limit: Option<u32>,
}

/// A validated tool call, ready for its executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    AddTask(tasks::NewTask),
    ListTasks { filter: tasks::TaskFilter, limit: u32 },
    UpdateTask { task_id: TaskId, changes: tasks::TaskChanges },
    CompleteTask(TaskId),
    DeleteTask(TaskId),
    Remember(String),
    Recall { fts: String, limit: u32 },
    Forget(MemoryId),
    SearchConversations { fts: String, limit: u32 },
}

/// What the model (or an MCP client) is told when a call cannot run: bad arguments, an
/// unknown id. Shown as the tool's result with `isError`, never as an HTTP failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl From<ApiError> for ToolError {
    fn from(e: ApiError) -> Self {
        ToolError(e.message.clone())
    }
}

impl ToolError {
    pub fn not_found(what: &str) -> Self {
        ToolError(format!("no such {what} among the user's"))
    }
}

fn decode<T: DeserializeOwned>(args: &str) -> Result<T, ToolError> {
    // From bytes, as `body::parse_json` reads a REST body: the two share their decoders.
    let mut de = serde_json::Deserializer::from_slice(args.as_bytes());
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        let what = text.strip_suffix(&position).unwrap_or(&text).to_string();
        if inner.is_syntax() || inner.is_eof() {
            ToolError(format!("arguments are not valid JSON: {what}"))
        } else if path.is_empty() || path == "." {
            ToolError(format!("arguments: {what}"))
        } else {
            ToolError(format!("arguments.{path}: {what}"))
        }
    })?;
    de.end().map_err(|_| ToolError("arguments: trailing characters after the JSON object".into()))?;
    Ok(value)
}

/// `{"<key>": [items...], "truncated": bool}`, with as many items (from the first) as fit in
/// [`MAX_RESULT_BYTES`]; `truncated` is also true when `more` says rows were left unread.
pub fn capped_list<T: Serialize>(key: &str, items: &[T], more: bool) -> String {
    let mut rendered: Vec<String> = items.iter().filter_map(|i| serde_json::to_string(i).ok()).collect();
    let total = rendered.len();
    let overhead = key.len() + 40;
    let mut size: usize = rendered.iter().map(|r| r.len() + 1).sum::<usize>() + overhead;
    while size > MAX_RESULT_BYTES {
        let Some(last) = rendered.pop() else { break };
        size -= last.len() + 1;
    }
    let truncated = more || rendered.len() < total;
    let key = serde_json::to_string(key).unwrap_or_default();
    format!("{{{key}:[{}],\"truncated\":{truncated}}}", rendered.join(","))
}

/// A conversation as `search_conversations` shows it (its id, title and last change).
#[derive(Debug, Serialize)]
pub struct ConversationHit<'a> {
    pub conversation_id: &'a str,
    pub title: &'a str,
    pub updated_at: String,
}

impl<'a> From<&'a crate::conversations::Conversation> for ConversationHit<'a> {
    fn from(c: &'a crate::conversations::Conversation) -> Self {
        Self { conversation_id: &c.conversation_id, title: &c.title, updated_at: crate::time::rfc3339(c.updated_at) }
    }
}

/// One object as a tool's result text (a single row is bounded by its own limits).
pub fn one<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn schema<T: schemars::JsonSchema>() -> Value {
        let mut generator =
            schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
        let mut value = generator.root_schema_for::<T>().to_value();
        if let Some(map) = value.as_object_mut() {
            for key in ["$schema", "title", "description"] {
                map.remove(key);
            }
        }
        value
    }

    fn generated() -> Value {
        let tools: Vec<Value> = ALL
            .into_iter()
            .map(|tool| {
                let input_schema = match tool {
                    Tool::AddTask => schema::<tasks::AddTask>(),
                    Tool::ListTasks => schema::<tasks::ListTasks>(),
                    Tool::UpdateTask => schema::<tasks::UpdateTask>(),
                    Tool::CompleteTask | Tool::DeleteTask => schema::<tasks::TaskRef>(),
                    Tool::Remember => schema::<memories::Remember>(),
                    Tool::Recall => schema::<memories::Recall>(),
                    Tool::Forget => schema::<memories::Forget>(),
                    Tool::SearchConversations => schema::<SearchConversations>(),
                };
                json!({ "name": tool.name(), "description": tool.description(), "inputSchema": input_schema })
            })
            .collect();
        Value::Array(tools)
    }

    #[test]
    fn tools_json_is_what_schemars_generates_from_the_input_types() {
        let fresh = generated();
        let stored: Value = serde_json::from_str(TOOLS_JSON).unwrap_or(Value::Null);
        if stored != fresh {
            if std::env::var_os("UPDATE_TOOL_SCHEMAS").is_some() {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/agent/tools.json");
                std::fs::write(path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
            } else {
                panic!("src/agent/tools.json is stale: run UPDATE_TOOL_SCHEMAS=1 cargo test -p edgechat-core agent");
            }
        }
    }

    #[test]
    fn every_schema_is_a_closed_object() {
        for tool in generated().as_array().unwrap() {
            let s = &tool["inputSchema"];
            assert_eq!(s["type"], "object", "{}", tool["name"]);
            assert_eq!(s["additionalProperties"], false, "{}", tool["name"]);
        }
    }

    #[test]
    fn definitions_carry_each_offered_tools_schema_from_tools_json_in_order() {
        let defs = definitions(&[Tool::Recall, Tool::AddTask]);
        assert_eq!(defs.iter().map(|d| d.name).collect::<Vec<_>>(), ["recall", "add_task"]);
        assert_eq!(defs[1].description, Tool::AddTask.description());
        let stored: Value = serde_json::from_str(TOOLS_JSON).unwrap();
        let schema: Value = serde_json::from_str(defs[1].parameters.get()).unwrap();
        assert_eq!(schema, stored[0]["inputSchema"]);
        assert_eq!(schema["required"], json!(["title"]));
        assert_eq!(definitions(&ALL).len(), ALL.len(), "every tool has an entry");
        assert!(definitions(&[]).is_empty());
    }

    #[test]
    fn names_are_unique_and_parse_back() {
        for tool in ALL {
            assert_eq!(Tool::parse(tool.name()), Some(tool));
        }
        assert_eq!(Tool::parse("rm_rf"), None);
    }

    #[test]
    fn good_arguments_become_calls() {
        let call = Tool::AddTask.validate(r#"{"title":"buy milk"}"#).unwrap();
        assert_eq!(call, Call::AddTask(tasks::NewTask { title: "buy milk".into(), notes: None, due_at: None }));
        assert_eq!(
            Tool::ListTasks.validate("").unwrap(),
            Call::ListTasks { filter: tasks::TaskFilter::default(), limit: 20 }
        );
        let id = TaskId::new([2; 16]);
        assert_eq!(Tool::CompleteTask.validate(&format!(r#"{{"task_id":"{id}"}}"#)).unwrap(), Call::CompleteTask(id));
        assert!(matches!(
            Tool::SearchConversations.validate(r#"{"query":"tea"}"#),
            Ok(Call::SearchConversations { limit: 5, .. })
        ));
    }

    #[test]
    fn bad_arguments_are_tool_errors_naming_the_member() {
        let cases: &[(Tool, &str, &str)] = &[
            (Tool::AddTask, "{", "arguments are not valid JSON"),
            (Tool::AddTask, "[1]", "arguments"),
            (Tool::AddTask, "{}", "arguments: missing field `title`"),
            (Tool::AddTask, r#"{"title":5}"#, "arguments.title"),
            (Tool::AddTask, r#"{"title":"a","owner":"usr_x"}"#, "arguments.owner: unknown field `owner`"),
            (Tool::AddTask, r#"{"title":""}"#, "title"),
            (Tool::AddTask, r#"{"title":"a","due_at":"friday"}"#, "due_at"),
            (Tool::AddTask, r#"{"title":"a"} x"#, "arguments"),
            (Tool::ListTasks, r#"{"status":"closed"}"#, "arguments.status"),
            (Tool::ListTasks, r#"{"limit":-1}"#, "arguments.limit"),
            (Tool::UpdateTask, r#"{"task_id":"tsk_nope","title":"x"}"#, "task_id"),
            (Tool::CompleteTask, r#"{"task_id":"usr_AAAAAAAAAAAAAAAAAAAAAA"}"#, "task_id"),
            (Tool::DeleteTask, r#"{"task_id":null}"#, "arguments.task_id"),
            (Tool::Remember, r#"{"content":"   "}"#, "content"),
            (Tool::Recall, r#"{"query":"()"}"#, "query"),
            (Tool::Recall, r#"{"query":"tea","limit":99}"#, "limit"),
            (Tool::Forget, r#"{"memory_id":"x"}"#, "memory_id"),
            (Tool::SearchConversations, r#"{"query":"tea","limit":11}"#, "limit"),
            (Tool::SearchConversations, r#"{"query":""}"#, "query"),
        ];
        for (tool, args, start) in cases {
            let err = tool.validate(args).unwrap_err();
            assert!(err.0.starts_with(start), "{} {args}: {}", tool.name(), err.0);
        }
    }

    #[test]
    fn random_arguments_never_panic() {
        let mut state: u64 = 0x1234_5678_9ABC_DEF1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let pool: Vec<char> =
            r#"{}[]":,0123456789-.etruflsan title task_id tsk_ limit status open done \é"#.chars().collect();
        for _ in 0..2000 {
            let len = next() % 60;
            let raw: String = (0..len).map(|_| pool[next() % pool.len()]).collect();
            for tool in ALL {
                let _ = tool.validate(&raw);
            }
        }
    }

    #[test]
    fn lists_are_cut_to_the_result_cap() {
        let small = capped_list("tasks", &["a", "b"], false);
        assert_eq!(small, r#"{"tasks":["a","b"],"truncated":false}"#);
        assert_eq!(capped_list("tasks", &["a"], true), r#"{"tasks":["a"],"truncated":true}"#);
        let big: Vec<String> = (0..50).map(|i| format!("{i}{}", "x".repeat(400))).collect();
        let text = capped_list("memories", &big, false);
        assert!(text.len() <= MAX_RESULT_BYTES, "{}", text.len());
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["truncated"], true);
        assert!(parsed["memories"].as_array().unwrap().len() > 10);
        assert!(parsed["memories"][0].as_str().unwrap().starts_with('0'));
    }
}
