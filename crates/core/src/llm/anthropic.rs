//! The Anthropic Messages wire format: request body (system prompt and turn rules), stream
//! events and `message` answers.

use crate::json::Value;
use crate::json_out::{array, Object};

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_message, has_error, json_object, str_at, u64_at};
use super::{Completion, Role, StreamEvent, Usage};

/// The API version the request and decoders are written against.
pub(super) const API_VERSION: &str = "2023-06-01";

/// `max_tokens` is required by the API; this is sent when the caller sets none.
pub(super) const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The first turn sent when a conversation does not start with a user message.
pub(super) const CONVERSATION_START: &str = "(conversation start)";

/// The events decoded; any other named event (`ping`, `content_block_start`, ...) is skipped
/// without looking at its data.
const DECODED_EVENTS: &[&str] = &["message_start", "content_block_delta", "message_delta", "message_stop", "error"];

struct Turn {
    role: Role,
    content: String,
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
    let mut body =
        Object::new().str("model", req.model).num("max_tokens", req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into());
    if !system.is_empty() {
        body = body.str("system", &system.join("\n\n"));
    }
    let turns = turns.iter().map(|t| Object::new().str("role", t.role.as_str()).str("content", &t.content).end());
    body = body.raw("messages", &array(turns));
    if let Some(t) = req.temperature {
        body = body.raw("temperature", t.as_str());
    }
    let body = body.bool("stream", req.stream).end();
    let mut headers = Vec::new();
    if let Some(key) = api_key {
        headers.push(("x-api-key".to_owned(), key.to_owned()));
    }
    headers.push(("anthropic-version".to_owned(), API_VERSION.to_owned()));
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    UpstreamRequest { path: "/v1/messages".to_owned(), headers, body }
}

/// One stream event, named by its `event:` field or else by its data's `type`.
pub(super) fn decode_event(event: &SseEvent, sink: &mut Sink) {
    if let Some(name) = event.event.as_deref() {
        if !DECODED_EVENTS.contains(&name) {
            return;
        }
    }
    let Some(data) = json_object(event.data.as_bytes()) else {
        return sink.push(StreamEvent::Malformed);
    };
    let name = event.event.as_deref().or_else(|| str_at(&data, "/type"));
    match name.unwrap_or_default() {
        "message_start" => {
            sink.usage(u64_at(&data, "/message/usage/input_tokens"), u64_at(&data, "/message/usage/output_tokens"))
        }
        "content_block_delta" => {
            // Other delta types (tool input JSON, thinking) add no answer text.
            let text = str_at(&data, "/delta/text").filter(|t| !t.is_empty());
            if let (Some("text_delta"), Some(text)) = (str_at(&data, "/delta/type"), text) {
                sink.push(StreamEvent::Delta(text.to_owned()));
            }
        }
        "message_delta" => {
            if let Some(reason) = str_at(&data, "/delta/stop_reason") {
                sink.push(StreamEvent::Finish(reason.to_owned()));
            }
            // Output tokens are cumulative; input tokens, when present, repeat message_start's.
            sink.usage(u64_at(&data, "/usage/input_tokens"), u64_at(&data, "/usage/output_tokens"));
        }
        "message_stop" => sink.push(StreamEvent::Done),
        "error" => sink.error(error_message(&data)),
        _ => {}
    }
}

/// A `message` object: its text blocks concatenated, `stop_reason` and usage.
pub(super) fn decode_completion(body: &Value) -> Result<Completion, String> {
    if has_error(body) {
        return Err(error_message(body).unwrap_or("upstream reported an error").to_owned());
    }
    let blocks = body.get("content").and_then(Value::as_array).ok_or("upstream answer has no content")?;
    let text = blocks
        .iter()
        .filter(|block| str_at(block, "/type") == Some("text"))
        .filter_map(|block| str_at(block, "/text"))
        .collect();
    Ok(Completion {
        text,
        usage: body.get("usage").filter(|u| u.is_object()).map(|u| Usage {
            prompt_tokens: u64_at(u, "/input_tokens").unwrap_or(0),
            completion_tokens: u64_at(u, "/output_tokens").unwrap_or(0),
        }),
        finish_reason: str_at(body, "/stop_reason").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::super::ChatMessage;
    use super::*;

    fn request(messages: &[ChatMessage], max_tokens: Option<u32>) -> UpstreamRequest {
        let req =
            ChatRequest { model: "claude-3-5-haiku-latest", messages, max_tokens, temperature: None, stream: true };
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
        let keyless =
            build(None, &ChatRequest { model: "m", messages: &[], max_tokens: None, temperature: None, stream: false });
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
        let quarter = "0.25".parse().unwrap();
        let req = ChatRequest {
            model: "m",
            messages: &[ChatMessage::new(Role::User, "hi")],
            max_tokens: Some(5),
            temperature: Some(&quarter),
            stream: false,
        };
        assert_eq!(
            build(None, &req).body,
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"temperature":0.25,"stream":false}"#
        );
    }
}
