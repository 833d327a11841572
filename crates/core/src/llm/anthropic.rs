//! The Anthropic Messages wire format: request body (system prompt and turn rules), stream
//! events and `message` answers.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_text, json_object, to_json};
use super::{Completion, Role, StreamEvent, Usage};

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

/// One turn of the `messages` array.
#[derive(Serialize)]
struct Turn {
    role: Role,
    content: String,
}

/// A Messages API request body.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn>,
    /// As the client wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    stream: bool,
}

/// `POST {base}/v1/messages`, for base URLs without `/v1`.
///
/// System messages become the top-level `system` (joined with blank lines); the others keep
/// their order, with consecutive same-role messages merged (the API requires alternation) and
/// a [`CONVERSATION_START`] user turn first when the conversation does not start with one.
pub(super) fn build(api_key: Option<&str>, req: &ChatRequest) -> UpstreamRequest {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for message in req.messages {
        match (message.role, turns.last_mut()) {
            (Role::System, _) => system.push(&message.content),
            (role, Some(last)) if last.role == role => {
                last.content.push_str("\n\n");
                last.content.push_str(&message.content);
            }
            (role, _) => turns.push(Turn { role, content: message.content.clone() }),
        }
    }
    if turns.first().map(|t| t.role) != Some(Role::User) {
        turns.insert(0, Turn { role: Role::User, content: CONVERSATION_START.to_owned() });
    }
    let body = Body {
        model: req.model,
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns,
        temperature: req.temperature,
        stream: req.stream,
    };
    let mut headers = Vec::new();
    if let Some(key) = api_key {
        headers.push(("x-api-key".to_owned(), key.to_owned()));
    }
    headers.push(("anthropic-version".to_owned(), API_VERSION.to_owned()));
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    UpstreamRequest { path: "/v1/messages".to_owned(), headers, body: to_json(&body) }
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
    /// `message_start`'s message, read for its usage.
    message: Option<EventMessage>,
    delta: Option<EventDelta>,
    /// `content_block_start`'s block, read for a tool call's name.
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
            let name = data.content_block.as_ref().and_then(|b| b.get("name")).and_then(Value::as_str);
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                sink.push(StreamEvent::OtherOutput(name.to_owned()));
            }
        }
        "content_block_delta" => {
            // Tool input JSON and thinking are billed output, but not answer text.
            let Some(EventDelta { kind: Some(kind), text: Some(text), .. }) = data.delta else { return };
            match kind.as_str() {
                _ if text.is_empty() => {}
                "text_delta" => sink.push(StreamEvent::Delta(text)),
                "input_json_delta" | "thinking_delta" => sink.push(StreamEvent::OtherOutput(text)),
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
    /// A text block's text or a thinking block's `thinking`.
    #[serde(alias = "thinking")]
    text: Option<String>,
    name: Option<String>,
    input: Option<Value>,
}

impl Block {
    /// Characters of billed output that are not answer text (for any block but text).
    fn other_output_chars(&self) -> u64 {
        let input = self.input.as_ref().map_or(0, |i| super::json_text(i).chars().count());
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
    Ok(Completion {
        text: texts.into_iter().filter_map(|b| b.text).collect(),
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
    use super::super::{ChatMessage, ToolChoice};
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
}
