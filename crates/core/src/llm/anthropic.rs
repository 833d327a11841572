//! The Anthropic Messages wire format: request body (system prompt and turn rules), stream
//! events and `message` answers.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_text, json_object, to_json};
use super::{ChatMessage, Completion, Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice, Usage};

/// The API version the request and decoders are written against.
pub(super) const API_VERSION: &str = "2023-06-01";

/// `max_tokens` is required by the API; this is sent when the caller sets none.
pub(super) const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The first turn sent when a conversation does not start with a user message.
pub(super) const CONVERSATION_START: &str = "(conversation start)";

/// The events decoded; any other named event (`ping`, `content_block_start`, ...) is skipped
/// without looking at its data.
const DECODED_EVENTS: &[&str] =
    &["message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop", "error"];

/// One turn of the `messages` array: its content is a plain string when it is one text block
/// (as for any conversation without tools), else its blocks.
struct Turn<'a> {
    role: Role,
    blocks: Vec<OutBlock<'a>>,
}

/// A content block sent.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutBlock<'a> {
    Text { text: String },
    ToolUse { id: &'a str, name: &'a str, input: Input<'a> },
    ToolResult { tool_use_id: &'a str, content: &'a str },
}

/// A `tool_use` block's input: the call's arguments when they are a JSON object, else `{}`
/// (the API takes nothing else; the model saw its result, a tool error, in the next turn).
pub(crate) struct Input<'a>(Option<&'a RawValue>);

impl<'a> Input<'a> {
    pub(crate) fn of(arguments: &'a str) -> Self {
        let raw = serde_json::from_str::<&RawValue>(arguments).ok();
        Input(raw.filter(|r| r.get().trim_start().starts_with('{')))
    }
}

impl Serialize for Input<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serde::ser::SerializeMap::end(serializer.serialize_map(Some(0))?),
        }
    }
}

impl Serialize for Turn<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut turn = serializer.serialize_struct("Turn", 2)?;
        turn.serialize_field("role", &self.role)?;
        match self.blocks.as_slice() {
            [OutBlock::Text { text }] => turn.serialize_field("content", text)?,
            // The API refuses empty text blocks.
            blocks => {
                let blocks: Vec<&OutBlock> =
                    blocks.iter().filter(|b| !matches!(b, OutBlock::Text { text } if text.is_empty())).collect();
                turn.serialize_field("content", &blocks)?
            }
        }
        turn.end()
    }
}

impl<'a> Turn<'a> {
    /// Adds text to the turn: to its last text block after a blank line (how consecutive
    /// same-role messages merge), else as a new block (an empty one only to start a turn).
    fn add_text(&mut self, text: &str) {
        match self.blocks.last_mut() {
            Some(OutBlock::Text { text: last }) => {
                last.push_str("\n\n");
                last.push_str(text);
            }
            Some(_) if text.is_empty() => {}
            _ => self.blocks.push(OutBlock::Text { text: text.to_owned() }),
        }
    }

    /// Adds a message's content: its text, then its tool calls (an assistant's) or its
    /// `tool_result` (a tool's; those go before the turn's text, as the API requires).
    fn add(&mut self, message: &'a ChatMessage) {
        if message.role == Role::Tool {
            let tool_use_id = message.tool_call_id.as_deref().unwrap_or_default();
            let at = self.blocks.iter().take_while(|b| matches!(b, OutBlock::ToolResult { .. })).count();
            self.blocks.insert(at, OutBlock::ToolResult { tool_use_id, content: &message.content });
            return;
        }
        if message.tool_calls.is_empty() || !message.content.is_empty() {
            self.add_text(&message.content);
        }
        for call in &message.tool_calls {
            self.blocks.push(OutBlock::ToolUse { id: &call.id, name: &call.name, input: Input::of(&call.arguments) });
        }
    }
}

/// A tool offered: `{"name", "description", "input_schema"}`.
#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    /// Left out when empty (a client's tool may have none).
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    input_schema: &'a RawValue,
}

/// `tool_choice`: `{"type": "auto" | "none" | "any"}` or `{"type": "tool", "name": ..}`.
#[derive(Serialize)]
struct Choice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl<'a> Choice<'a> {
    /// The choice to send; `None` for [`ToolChoice::Auto`], the API's default.
    fn of(choice: ToolChoice<'a>) -> Option<Self> {
        let (kind, name) = match choice {
            ToolChoice::Auto => return None,
            ToolChoice::None => ("none", None),
            ToolChoice::Required => ("any", None),
            ToolChoice::Tool(name) => ("tool", Some(name)),
        };
        Some(Choice { kind, name })
    }
}

/// A Messages API request body.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: Vec<Tool<'a>>,
    /// Sent only with tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    /// As the client wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    stream: bool,
}

/// `POST {base}/v1/messages`, for base URLs without `/v1`.
///
/// System messages become the top-level `system` (joined with blank lines); the others keep
/// their order, with consecutive same-role messages merged (the API requires alternation; tool
/// results are user turns) and a [`CONVERSATION_START`] user turn first when the conversation
/// does not start with one.
pub(super) fn build(api_key: Option<&str>, req: &ChatRequest) -> UpstreamRequest {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for message in req.messages {
        let role = if message.role == Role::Tool { Role::User } else { message.role };
        match turns.last_mut() {
            _ if role == Role::System => system.push(&message.content),
            Some(last) if last.role == role => last.add(message),
            _ => {
                let mut turn = Turn { role, blocks: Vec::new() };
                turn.add(message);
                turns.push(turn);
            }
        }
    }
    if turns.first().map(|t| t.role) != Some(Role::User) {
        turns
            .insert(0, Turn { role: Role::User, blocks: vec![OutBlock::Text { text: CONVERSATION_START.to_owned() }] });
    }
    let tools: Vec<Tool> = req
        .tools
        .iter()
        .map(|t| Tool { name: t.name, description: t.description, input_schema: t.parameters })
        .collect();
    // Sent only with tools (the API refuses a choice without them).
    let tool_choice = if tools.is_empty() { None } else { Choice::of(req.tool_choice) };
    let body = Body {
        model: req.model,
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns,
        tools,
        tool_choice,
        temperature: req.temperature,
        stream: req.stream,
    };
    request(api_key, to_json(&body))
}

/// `POST {base}/v1/messages` with `body`, and the headers every request carries.
pub(super) fn request(api_key: Option<&str>, body: String) -> UpstreamRequest {
    let mut headers = Vec::new();
    if let Some(key) = api_key {
        headers.push(("x-api-key".to_owned(), key.to_owned()));
    }
    headers.push(("anthropic-version".to_owned(), API_VERSION.to_owned()));
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    UpstreamRequest { path: "/v1/messages".to_owned(), headers, body }
}

/// Input and output tokens, each as reported.
#[derive(Deserialize)]
struct Tokens {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// The data of any decoded stream event; each event type fills the members it has.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A content block event's block index.
    index: Option<usize>,
    /// `message_start`'s message, read for its usage.
    message: Option<EventMessage>,
    delta: Option<EventDelta>,
    /// `content_block_start`'s block, read for a tool call's id and name.
    content_block: Option<Value>,
    usage: Option<Tokens>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct EventMessage {
    usage: Option<Tokens>,
}

/// A `content_block_delta`'s delta (type and text, tool input or thinking) or a
/// `message_delta`'s (stop reason).
#[derive(Deserialize)]
struct EventDelta {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A text delta's text, a tool input delta's `partial_json` or a thinking delta's
    /// `thinking` (each delta type has one of them).
    #[serde(alias = "partial_json", alias = "thinking")]
    text: Option<String>,
    stop_reason: Option<String>,
}

/// One stream event, named by its `event:` field or else by its data's `type`.
pub(super) fn decode_event(event: &SseEvent, sink: &mut Sink) {
    if let Some(name) = event.event.as_deref() {
        if !DECODED_EVENTS.contains(&name) {
            return;
        }
    }
    let Some(data) = json_object::<Event>(event.data.as_bytes()) else {
        return sink.push(StreamEvent::Malformed);
    };
    let name = event.event.as_deref().or(data.kind.as_deref());
    match name.unwrap_or_default() {
        "message_start" => {
            let usage = data.message.and_then(|m| m.usage);
            let usage = usage.as_ref();
            sink.usage(usage.and_then(|u| u.input_tokens), usage.and_then(|u| u.output_tokens))
        }
        "content_block_start" => {
            let Some(mut block) = data.content_block else { return };
            let mut text = |key: &str| block.get_mut(key).and_then(|v| v.as_str().map(str::to_owned));
            let (kind, id, name) = (text("type"), text("id"), text("name"));
            match (kind.as_deref(), name.filter(|n| !n.is_empty())) {
                (Some("tool_use"), name) => {
                    // The input comes in `input_json_delta`s; a server that sends it whole here
                    // (a non-empty object) is taken at its word.
                    let input = block.get("input").filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                    let arguments = input.map(super::json_text).unwrap_or_default();
                    let index = data.index.unwrap_or(0);
                    sink.push(StreamEvent::ToolCall(ToolCallDelta { index, id, name, arguments }));
                }
                // Server tools' calls (never offered) are billed output only.
                (_, Some(name)) => sink.push(StreamEvent::OtherOutput(name)),
                _ => {}
            }
        }
        "content_block_delta" => {
            // Tool input JSON belongs to the call of its block; thinking is billed output, but
            // not answer text.
            let Some(EventDelta { kind: Some(kind), text: Some(text), .. }) = data.delta else { return };
            match kind.as_str() {
                _ if text.is_empty() => {}
                "text_delta" => sink.push(StreamEvent::Delta(text)),
                "input_json_delta" => {
                    let index = data.index.unwrap_or(0);
                    sink.push(StreamEvent::ToolCall(ToolCallDelta { index, id: None, name: None, arguments: text }))
                }
                "thinking_delta" => sink.push(StreamEvent::OtherOutput(text)),
                _ => {}
            }
        }
        "message_delta" => {
            if let Some(reason) = data.delta.and_then(|d| d.stop_reason) {
                sink.push(StreamEvent::Finish(reason));
            }
            // Output tokens are cumulative; input tokens, when present, repeat message_start's.
            let usage = data.usage.as_ref();
            sink.usage(usage.and_then(|u| u.input_tokens), usage.and_then(|u| u.output_tokens));
        }
        "message_stop" => sink.push(StreamEvent::Done),
        "error" => sink.error(data.error.as_ref().and_then(error_text)),
        _ => {}
    }
}

/// A `message` object (or an error body).
#[derive(Deserialize)]
pub(super) struct Message {
    content: Option<Vec<Block>>,
    usage: Option<Tokens>,
    stop_reason: Option<String>,
    error: Option<Value>,
}

/// A content block: text, or billed output that is not answer text (a tool call's name and
/// input, thinking).
#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A `tool_use` block's id.
    id: Option<String>,
    /// A text block's text or a thinking block's `thinking`.
    #[serde(alias = "thinking")]
    text: Option<String>,
    name: Option<String>,
    /// A `tool_use` block's input, as the upstream wrote it (its text is the call's arguments).
    input: Option<Box<RawValue>>,
}

impl Block {
    /// Characters of billed output that are not answer text (for any block but text).
    fn other_output_chars(&self) -> u64 {
        let input = self.input.as_ref().map_or(0, |i| i.get().chars().count());
        let texts = [&self.name, &self.text].into_iter().flatten().map(|t| t.chars().count());
        (input + texts.sum::<usize>()) as u64
    }
}

/// A `message` object: its text blocks concatenated, the size of its other blocks (tool use,
/// thinking), `stop_reason` and usage.
pub(super) fn decode_completion(body: Message) -> Result<Completion, String> {
    if let Some(error) = &body.error {
        return Err(error_text(error).unwrap_or("upstream reported an error").to_owned());
    }
    let blocks = body.content.ok_or("upstream answer has no content")?;
    let (texts, others): (Vec<Block>, Vec<Block>) =
        blocks.into_iter().partition(|block| block.kind.as_deref() == Some("text"));
    let tool_calls = others
        .iter()
        .filter(|b| b.kind.as_deref() == Some("tool_use"))
        .map(|b| ToolCall {
            id: b.id.clone().unwrap_or_default(),
            name: b.name.clone().unwrap_or_default(),
            // The API's input is an object, passed on as its JSON text.
            arguments: b.input.as_ref().map_or_else(|| "{}".to_owned(), |i| i.get().to_owned()),
        })
        .collect();
    Ok(Completion {
        text: texts.into_iter().filter_map(|b| b.text).collect(),
        tool_calls,
        other_output_chars: others.iter().map(Block::other_output_chars).sum(),
        usage: body.usage.map(|u| Usage {
            prompt_tokens: u.input_tokens.unwrap_or(0),
            completion_tokens: u.output_tokens.unwrap_or(0),
        }),
        finish_reason: body.stop_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::super::ToolDef;
    use super::*;

    fn request(messages: &[ChatMessage], max_tokens: Option<u32>) -> UpstreamRequest {
        let req = ChatRequest {
            model: "claude-3-5-haiku-latest",
            messages,
            max_tokens,
            temperature: None,
            stream: true,
            tools: &[],
            tool_choice: ToolChoice::Auto,
        };
        build(Some("key-1"), &req)
    }

    #[test]
    fn system_messages_move_to_the_top_level_and_max_tokens_defaults() {
        let messages = [
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "hi"),
            ChatMessage::new(Role::System, "Use French."),
        ];
        let built = request(&messages, None);
        assert_eq!(built.path, "/v1/messages");
        assert_eq!(
            built.body,
            r#"{"model":"claude-3-5-haiku-latest","max_tokens":1024,"system":"Be brief.\n\nUse French.","messages":[{"role":"user","content":"hi"}],"stream":true}"#
        );
    }

    #[test]
    fn the_key_goes_in_x_api_key_with_the_api_version() {
        let built = request(&[ChatMessage::new(Role::User, "hi")], Some(64));
        assert_eq!(
            built.headers,
            [
                ("x-api-key".to_owned(), "key-1".to_owned()),
                ("anthropic-version".to_owned(), "2023-06-01".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        assert!(built.body.contains(r#""max_tokens":64"#));
        let keyless = build(
            None,
            &ChatRequest {
                model: "m",
                messages: &[],
                max_tokens: None,
                temperature: None,
                stream: false,
                tools: &[],
                tool_choice: ToolChoice::Auto,
            },
        );
        assert!(keyless.headers.iter().all(|(name, _)| name != "x-api-key"));
    }

    #[test]
    fn consecutive_same_role_messages_merge_so_turns_alternate() {
        let messages = [
            ChatMessage::new(Role::User, "one"),
            ChatMessage::new(Role::User, "two"),
            ChatMessage::new(Role::Assistant, "a"),
            ChatMessage::new(Role::System, "s"),
            ChatMessage::new(Role::Assistant, "b"),
            ChatMessage::new(Role::User, "three"),
        ];
        let built = request(&messages, Some(10));
        assert_eq!(
            built.body,
            r#"{"model":"claude-3-5-haiku-latest","max_tokens":10,"system":"s","messages":[{"role":"user","content":"one\n\ntwo"},{"role":"assistant","content":"a\n\nb"},{"role":"user","content":"three"}],"stream":true}"#
        );
    }

    #[test]
    fn a_conversation_starting_with_the_assistant_gets_a_user_turn_first() {
        let messages =
            [ChatMessage::new(Role::Assistant, "Hello! How can I help?"), ChatMessage::new(Role::User, "hi")];
        let built = request(&messages, Some(10));
        assert_eq!(
            built.body,
            r#"{"model":"claude-3-5-haiku-latest","max_tokens":10,"messages":[{"role":"user","content":"(conversation start)"},{"role":"assistant","content":"Hello! How can I help?"},{"role":"user","content":"hi"}],"stream":true}"#
        );
    }

    #[test]
    fn temperature_is_sent_when_set() {
        let quarter = RawValue::from_string("0.25".into()).unwrap();
        let req = ChatRequest {
            model: "m",
            messages: &[ChatMessage::new(Role::User, "hi")],
            max_tokens: Some(5),
            temperature: Some(&quarter),
            stream: false,
            tools: &[],
            tool_choice: ToolChoice::Auto,
        };
        assert_eq!(
            build(None, &req).body,
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"temperature":0.25,"stream":false}"#
        );
    }

    fn tool_request<'a>(messages: &'a [ChatMessage], tools: &'a [ToolDef<'a>], choice: ToolChoice) -> String {
        let req = ChatRequest {
            model: "m",
            messages,
            max_tokens: Some(10),
            temperature: None,
            stream: true,
            tools,
            tool_choice: choice,
        };
        build(None, &req).body
    }

    #[test]
    fn calls_become_tool_use_blocks_and_consecutive_results_one_user_turn_of_tool_result_blocks() {
        let calls = vec![
            ToolCall { id: "toolu_1".into(), name: "add_task".into(), arguments: r#"{"title":"milk"}"#.into() },
            ToolCall { id: "toolu_2".into(), name: "recall".into(), arguments: "{not json".into() },
            ToolCall { id: "toolu_3".into(), name: "recall".into(), arguments: "[1]".into() },
        ];
        let messages = [
            ChatMessage::new(Role::User, "remember milk"),
            ChatMessage::assistant_calls("On it.", calls),
            ChatMessage::tool_result("toolu_1", r#"{"task_id":"tsk_1"}"#),
            ChatMessage::tool_result("toolu_2", "arguments are not valid JSON"),
            ChatMessage::tool_result("toolu_3", "arguments: expected an object"),
            ChatMessage::new(Role::User, "and eggs"),
        ];
        let schema = RawValue::from_string(r#"{"type":"object"}"#.into()).unwrap();
        let tools = [ToolDef { name: "add_task", description: "Add a task.", parameters: &schema }];
        assert_eq!(
            tool_request(&messages, &tools, ToolChoice::Auto),
            concat!(
                r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"remember milk"},"#,
                r#"{"role":"assistant","content":[{"type":"text","text":"On it."},"#,
                r#"{"type":"tool_use","id":"toolu_1","name":"add_task","input":{"title":"milk"}},"#,
                r#"{"type":"tool_use","id":"toolu_2","name":"recall","input":{}},"#,
                r#"{"type":"tool_use","id":"toolu_3","name":"recall","input":{}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"{\"task_id\":\"tsk_1\"}"},"#,
                r#"{"type":"tool_result","tool_use_id":"toolu_2","content":"arguments are not valid JSON"},"#,
                r#"{"type":"tool_result","tool_use_id":"toolu_3","content":"arguments: expected an object"},"#,
                r#"{"type":"text","text":"and eggs"}]}],"#,
                r#""tools":[{"name":"add_task","description":"Add a task.","input_schema":{"type":"object"}}],"stream":true}"#
            )
        );
        assert!(tool_request(&messages, &tools, ToolChoice::None)
            .ends_with(r#""input_schema":{"type":"object"}}],"tool_choice":{"type":"none"},"stream":true}"#));
        assert!(!tool_request(&messages, &[], ToolChoice::None).contains("tool_choice"), "no tools, no choice");
        assert!(tool_request(&messages, &tools, ToolChoice::Required)
            .ends_with(r#"}],"tool_choice":{"type":"any"},"stream":true}"#));
        assert!(tool_request(&messages, &tools, ToolChoice::Tool("add_task"))
            .ends_with(r#"}],"tool_choice":{"type":"tool","name":"add_task"},"stream":true}"#));
        let bare = [ToolDef { name: "now", description: "", parameters: &schema }];
        assert!(tool_request(&messages, &bare, ToolChoice::Auto)
            .ends_with(r#""tools":[{"name":"now","input_schema":{"type":"object"}}],"stream":true}"#));
    }

    #[test]
    fn a_call_without_text_sends_no_empty_text_block_and_results_go_before_a_users_text() {
        let call = ToolCall { id: "t".into(), name: "recall".into(), arguments: "{}".into() };
        let messages = [
            ChatMessage::new(Role::User, "hi"),
            ChatMessage::new(Role::Assistant, ""),
            ChatMessage::assistant_calls("", vec![call]),
            ChatMessage::new(Role::User, "wait"),
            ChatMessage::tool_result("t", "none"),
        ];
        assert_eq!(
            tool_request(&messages, &[], ToolChoice::Auto),
            concat!(
                r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"},"#,
                r#"{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"recall","input":{}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"none"},"#,
                r#"{"type":"text","text":"wait"}]}],"stream":true}"#
            )
        );
    }

    #[test]
    fn a_whole_message_keeps_its_tool_calls_in_order_with_their_input_as_json_text() {
        let body = br#"{"content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"toolu_2","name":"now","input":{"zone":"UTC","at":-3.50}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":9}}"#;
        let decoded = decode_completion(serde_json::from_slice(body).unwrap()).unwrap();
        assert_eq!(decoded.text, "Let me check.");
        assert_eq!(
            decoded.tool_calls,
            [
                ToolCall { id: "toolu_1".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
                // As written: member order and number text kept.
                ToolCall { id: "toolu_2".into(), name: "now".into(), arguments: r#"{"zone":"UTC","at":-3.50}"#.into() },
            ]
        );
        assert_eq!(decoded.finish_reason.as_deref(), Some("tool_use"));
    }
}
