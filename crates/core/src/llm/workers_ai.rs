//! The Cloudflare Workers AI text-generation format, as the `AI` binding takes and returns
//! it: input object, `{"response": ..}` stream events and answers, error bodies. No tools are
//! ever sent to it, so its answers are text only; a history with tool steps is sent as text
//! (an assistant's calls left out, a tool's result as a user message).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_message, error_text, json_object, to_json, wire_messages, Counts, WireMessage};
use super::{Completion, StreamEvent};

/// The binding's input object.
#[derive(Serialize)]
struct Input<'a> {
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// As the client wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
}

/// The input for `env.AI.run(model, body)`: `path` carries the model id, there are no headers
/// (the binding authenticates itself).
pub(super) fn build(req: &ChatRequest) -> UpstreamRequest {
    let input = Input {
        messages: wire_messages(req.messages),
        stream: req.stream,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
    };
    UpstreamRequest { path: req.model.to_owned(), headers: Vec::new(), body: to_json(&input) }
}

/// Text and usage: a stream event, a binding answer, or a REST answer's `result`.
#[derive(Deserialize)]
struct Text {
    response: Option<String>,
    usage: Option<Counts>,
}

/// A stream event: text and usage, or an error.
#[derive(Deserialize)]
struct Event {
    response: Option<String>,
    usage: Option<Counts>,
    error: Option<Value>,
}

/// One `data:` event: `{"response": "text", "usage": {..}?}` or `[DONE]`. The stream names no
/// finish reason.
pub(super) fn decode_event(event: &SseEvent, sink: &mut Sink) {
    let data = event.data.trim();
    if data == "[DONE]" {
        return sink.push(StreamEvent::Done);
    }
    let Some(chunk) = json_object::<Event>(data.as_bytes()) else {
        return sink.push(StreamEvent::Malformed);
    };
    if let Some(error) = &chunk.error {
        return sink.error(error_text(error));
    }
    if let Some(text) = chunk.response.filter(|t| !t.is_empty()) {
        sink.push(StreamEvent::Delta(text));
    }
    if let Some(usage) = chunk.usage {
        sink.usage(usage.prompt_tokens, usage.completion_tokens);
    }
}

/// A whole answer: the binding's `{"response": ..}`, the REST API's `{"result": {..}}`, or an
/// error body.
#[derive(Deserialize)]
pub(super) struct Answer {
    response: Option<String>,
    usage: Option<Counts>,
    result: Option<Text>,
    errors: Option<Vec<Value>>,
    error: Option<Value>,
}

/// A whole answer: the binding's `{"response": ..}` or the REST API's `{"result": {..}}`.
pub(super) fn decode_completion(body: Answer) -> Result<Completion, String> {
    let first_error = body.errors.as_ref().and_then(|e| e.first());
    if body.error.is_some() || first_error.is_some() {
        let message = first_error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .or_else(|| body.error.as_ref().and_then(error_text));
        return Err(message.unwrap_or("upstream reported an error").to_owned());
    }
    let Text { response, usage } = body.result.unwrap_or(Text { response: body.response, usage: body.usage });
    let text = response.ok_or("upstream answer has no response")?;
    Ok(Completion {
        text,
        tool_calls: Vec::new(),
        other_output_chars: 0,
        usage: usage.as_ref().map(Counts::usage),
        finish_reason: None,
    })
}

/// The message of a REST error body (`{"errors": [{"message": ..}]}`) or an `error` member.
pub(super) fn rest_error_message(body: &Value) -> Option<&str> {
    body.pointer("/errors/0/message").and_then(Value::as_str).or_else(|| error_message(body))
}

#[cfg(test)]
mod tests {
    use super::super::{ChatMessage, Role, ToolChoice};
    use super::*;

    #[test]
    fn the_binding_input_carries_messages_and_the_path_carries_the_model() {
        let messages = [ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "hi")];
        let req = ChatRequest {
            model: "@cf/meta/llama-3.1-8b-instruct",
            messages: &messages,
            max_tokens: Some(100),
            temperature: None,
            stream: true,
            tools: &[],
            tool_choice: ToolChoice::Auto,
        };
        let built = build(&req);
        assert_eq!(built.path, "@cf/meta/llama-3.1-8b-instruct");
        assert!(built.headers.is_empty());
        assert_eq!(
            built.body,
            r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"stream":true,"max_tokens":100}"#
        );
    }

    #[test]
    fn tool_steps_go_as_text_and_tools_are_never_sent() {
        let call = crate::llm::ToolCall { id: "c".into(), name: "recall".into(), arguments: "{}".into() };
        let messages = [ChatMessage::assistant_calls("Looking.", vec![call]), ChatMessage::tool_result("c", "none")];
        let schema = RawValue::from_string("{}".into()).unwrap();
        let tools = [crate::llm::ToolDef { name: "recall", description: "d", parameters: &schema }];
        let req = ChatRequest {
            model: "m",
            messages: &messages,
            max_tokens: None,
            temperature: None,
            stream: false,
            tools: &tools,
            tool_choice: ToolChoice::None,
        };
        assert_eq!(
            build(&req).body,
            r#"{"messages":[{"role":"assistant","content":"Looking."},{"role":"user","content":"none"}],"stream":false}"#
        );
    }
}
