//! The agent loop's pure rules: the steps of a tool turn as stored and shown, their replay as
//! model messages, the payloads of the `tool_call` and `tool_result` events, and what the next
//! model call may do.

use crate::conversations::Message;
use crate::llm::context::estimate_chars;
use crate::llm::{ChatMessage, Role, ToolCall, ToolChoice, ToolDef};
use serde::{Deserialize, Serialize};

/// Characters of a tool result carried by a `tool_result` event (the stored step keeps the
/// whole result, itself capped at [`super::MAX_RESULT_BYTES`]).
pub const EVENT_RESULT_CHARS: usize = 1_000;

/// One model call of a turn: the text it wrote and the tools it called, each with its result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub text: String,
    pub tool_calls: Vec<StepCall>,
}

/// A tool call of a step and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCall {
    pub id: String,
    pub name: String,
    /// As the model sent them (JSON text, possibly invalid).
    pub arguments: String,
    pub ok: bool,
    pub result: String,
}

impl StepCall {
    /// A call with its outcome.
    pub fn new(call: ToolCall, ok: bool, result: String) -> Self {
        Self { id: call.id, name: call.name, arguments: call.arguments, ok, result }
    }
}

/// The calls of a model's answer as the loop runs and replays them: a call without a name
/// (a broken upstream) gets a placeholder, which no tool has, so it is answered as unknown and
/// still replays (every provider needs a name).
pub fn callable(calls: &[ToolCall]) -> Vec<ToolCall> {
    let named = |c: &ToolCall| {
        let name = if c.name.is_empty() { "unnamed_tool".to_owned() } else { c.name.clone() };
        ToolCall { name, ..c.clone() }
    };
    calls.iter().map(named).collect()
}

/// The `steps` column of a turn: `None` (stored as NULL) for an answer that called no tool.
pub fn stored_steps(steps: &[Step]) -> Option<String> {
    if steps.iter().all(|s| s.tool_calls.is_empty()) {
        return None;
    }
    // Strings and booleans only: serializing cannot fail.
    serde_json::to_string(steps).ok()
}

/// An assistant message as the model saw it: its text alone, or with stored `steps` each
/// step's text and calls followed by one tool message per result, so that a later turn (or a
/// regenerate, or a branch) replays the same history.
pub fn replay(content: &str, steps: Option<&str>) -> Vec<ChatMessage> {
    let steps: Vec<Step> = steps.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    if steps.is_empty() {
        return if content.is_empty() { Vec::new() } else { vec![ChatMessage::new(Role::Assistant, content)] };
    }
    let mut messages = Vec::new();
    for step in steps {
        if step.tool_calls.is_empty() {
            if !step.text.is_empty() {
                messages.push(ChatMessage::new(Role::Assistant, step.text));
            }
            continue;
        }
        let calls = step
            .tool_calls
            .iter()
            .map(|c| ToolCall { id: c.id.clone(), name: c.name.clone(), arguments: c.arguments.clone() })
            .collect();
        messages.push(ChatMessage::assistant_calls(step.text, calls));
        messages.extend(step.tool_calls.into_iter().map(|c| ChatMessage::tool_result(c.id, c.result)));
    }
    messages
}

/// The estimated prompt tokens of offering `tools`: their names, descriptions and schemas as
/// text, as the upstream counts them in the prompt.
pub fn tools_estimate(tools: &[ToolDef<'_>]) -> u64 {
    let chars = tools.iter().map(|t| t.name.chars().count() + t.description.chars().count() + t.parameters.get().len());
    estimate_chars(chars.sum::<usize>() as u64)
}

/// A stored message as the model sees it: a question as its text (none when empty), an answer
/// with its tool steps replayed ([`replay`]).
pub fn as_chat(message: &Message) -> Vec<ChatMessage> {
    if message.role == "assistant" {
        replay(&message.content, message.steps.as_deref())
    } else if message.content.is_empty() {
        Vec::new()
    } else {
        vec![ChatMessage::new(Role::User, message.content.clone())]
    }
}

/// Limits of one turn's loop (`MAX_TOOL_STEPS`, `TOOL_TIME_BUDGET_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopLimits {
    /// Model calls per turn; the last one may not call tools.
    pub max_steps: u32,
    /// After this long, the next model call may not call tools.
    pub time_budget_ms: u64,
}

impl Default for LoopLimits {
    fn default() -> Self {
        Self { max_steps: 8, time_budget_ms: 60_000 }
    }
}

impl LoopLimits {
    /// How step `step` (1-based), `elapsed_ms` into the turn, may use tools: freely, or not at
    /// all when it is the last step the limits allow (so the model answers in text).
    pub fn choice(&self, step: u32, elapsed_ms: u64) -> ToolChoice<'static> {
        if step >= self.max_steps || elapsed_ms >= self.time_budget_ms {
            ToolChoice::None
        } else {
            ToolChoice::Auto
        }
    }
}

/// Why a call the model made was not run.
pub const NOT_RUN_LIMIT: &str = "not run: the turn reached its step or time limit";
/// Why a call was not run after the client stopped the turn.
pub const NOT_RUN_STOPPED: &str = "not run: the turn was stopped";

/// `tool_call`: the model asked for a tool.
#[derive(Debug, Serialize)]
pub struct ToolCallEvent<'a> {
    pub step: u32,
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: &'a str,
}

/// `tool_result`: how the call went, its result cut to [`EVENT_RESULT_CHARS`].
#[derive(Debug, Serialize)]
pub struct ToolResultEvent<'a> {
    pub step: u32,
    pub id: &'a str,
    pub name: &'a str,
    pub ok: bool,
    pub result: &'a str,
}

impl<'a> ToolResultEvent<'a> {
    pub fn new(step: u32, call: &'a StepCall) -> Self {
        let result = match call.result.char_indices().nth(EVENT_RESULT_CHARS) {
            Some((at, _)) => &call.result[..at],
            None => &call.result,
        };
        Self { step, id: &call.id, name: &call.name, ok: call.ok, result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, ok: bool) -> StepCall {
        StepCall {
            id: id.into(),
            name: "add_task".into(),
            arguments: r#"{"title":"x"}"#.into(),
            ok,
            result: "r".into(),
        }
    }

    #[test]
    fn a_plain_answer_stores_no_steps_and_replays_as_its_text() {
        assert_eq!(stored_steps(&[Step { text: "hi".into(), tool_calls: vec![] }]), None);
        assert_eq!(replay("hi", None), vec![ChatMessage::new(Role::Assistant, "hi")]);
        assert!(replay("", None).is_empty());
    }

    #[test]
    fn a_tool_turn_replays_each_call_followed_by_its_result() {
        let steps = vec![
            Step { text: "Adding.".into(), tool_calls: vec![call("c1", true), call("c2", false)] },
            Step { text: "Done.".into(), tool_calls: vec![] },
        ];
        let stored = stored_steps(&steps).unwrap();
        let back: Vec<Step> = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, steps);
        let replayed = replay("Adding.Done.", Some(&stored));
        assert_eq!(replayed.len(), 4);
        assert_eq!(replayed[0].role, Role::Assistant);
        assert_eq!(replayed[0].content, "Adding.");
        assert_eq!(replayed[0].tool_calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c1", "c2"]);
        assert_eq!((replayed[1].role, replayed[1].tool_call_id.as_deref()), (Role::Tool, Some("c1")));
        assert_eq!((replayed[2].role, replayed[2].tool_call_id.as_deref()), (Role::Tool, Some("c2")));
        assert_eq!(replayed[3], ChatMessage::new(Role::Assistant, "Done."));
    }

    #[test]
    fn offering_tools_counts_their_definitions_in_the_prompt() {
        let all = crate::agent::definitions(&crate::agent::ALL);
        let one = crate::agent::definitions(&[crate::agent::Tool::Forget]);
        assert_eq!(tools_estimate(&[]), 0);
        assert!(tools_estimate(&one) > 10, "{}", tools_estimate(&one));
        assert!(tools_estimate(&all) > 5 * tools_estimate(&one));
    }

    #[test]
    fn a_call_without_a_name_gets_a_placeholder_no_tool_has() {
        let calls = [ToolCall { id: "c".into(), name: String::new(), arguments: "{}".into() }];
        let named = callable(&calls);
        assert_eq!(named[0].name, "unnamed_tool");
        assert_eq!(crate::agent::Tool::parse(&named[0].name), None);
    }

    #[test]
    fn a_stored_message_is_sent_as_its_text_or_its_replayed_steps() {
        let row = r#"[{"message_id":"m","conversation_id":"c","parent_id":null,"role":"user","content":"hi","status":"complete",
            "model":null,"provider":null,"prompt_tokens":null,"completion_tokens":null,"is_usage_estimated":0,
            "time_to_first_token_ms":null,"duration_ms":null,"created_at":1,"steps":null}]"#;
        let mut m = crate::body::parse_rows::<Message>(row).unwrap().remove(0);
        assert_eq!(as_chat(&m), vec![ChatMessage::new(Role::User, "hi")]);
        m.role = "assistant".into();
        m.steps = stored_steps(&[Step { text: "a".into(), tool_calls: vec![call("c1", true)] }]);
        assert_eq!(as_chat(&m).iter().map(|c| c.role).collect::<Vec<_>>(), [Role::Assistant, Role::Tool]);
        m.content.clear();
        m.steps = None;
        assert!(as_chat(&m).is_empty());
        m.role = "user".into();
        assert!(as_chat(&m).is_empty());
    }

    #[test]
    fn unreadable_stored_steps_fall_back_to_the_text() {
        assert_eq!(replay("hi", Some("not json")), vec![ChatMessage::new(Role::Assistant, "hi")]);
    }

    #[test]
    fn the_last_step_and_steps_past_the_time_budget_may_not_call_tools() {
        let limits = LoopLimits { max_steps: 3, time_budget_ms: 1_000 };
        assert_eq!(limits.choice(1, 0), ToolChoice::Auto);
        assert_eq!(limits.choice(2, 999), ToolChoice::Auto);
        assert_eq!(limits.choice(3, 0), ToolChoice::None);
        assert_eq!(limits.choice(2, 1_000), ToolChoice::None);
        assert_eq!(LoopLimits { max_steps: 1, time_budget_ms: 1_000 }.choice(1, 0), ToolChoice::None);
    }

    #[test]
    fn a_result_event_carries_at_most_its_cap_of_characters() {
        let mut long = call("c", true);
        long.result = "é".repeat(EVENT_RESULT_CHARS + 5);
        let event = ToolResultEvent::new(2, &long);
        assert_eq!(event.result.chars().count(), EVENT_RESULT_CHARS);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            (json["step"].as_u64(), json["ok"].as_bool(), json["name"].as_str()),
            (Some(2), Some(true), Some("add_task"))
        );
    }
}
