//! The OpenAI Chat Completions wire format (and compatible APIs): request body, stream chunks
//! and `chat.completion` answers.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_text, json_object, loose_text, to_json, wire_messages, Counts, WireMessage};
use super::{Completion, StreamEvent};

/// A Chat Completions request body.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// As the client wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// `POST {base}/chat/completions`, for base URLs that end in `/v1`.
pub(super) fn build(api_key: Option<&str>, req: &ChatRequest) -> UpstreamRequest {
    let body = Body {
        model: req.model,
        messages: wire_messages(req.messages),
        stream: req.stream,
        // Without it a stream reports no usage at all.
        stream_options: req.stream.then_some(StreamOptions { include_usage: true }),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
    };
    let mut headers = Vec::new();
    if let Some(key) = api_key {
        headers.push(("authorization".to_owned(), format!("Bearer {key}")));
    }
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    UpstreamRequest { path: "/chat/completions".to_owned(), headers, body: to_json(&body) }
}

/// A `chat.completion.chunk` or a whole `chat.completion` (they share their shape, and one
/// type decodes both), or an `{"error": ..}`; only the first choice is read.
#[derive(Deserialize)]
pub(super) struct Answer {
    choices: Option<Vec<Choice>>,
    usage: Option<Counts>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    /// A chunk's.
    delta: Option<Output>,
    /// A whole answer's.
    message: Option<Output>,
    finish_reason: Option<String>,
}

/// A delta or a whole message: the answer text, and the output that is billed without being
/// answer text: refusals, reasoning (`reasoning_content` of DeepSeek-style APIs, `reasoning`
/// of others) and tool calls (names and arguments), read as plain JSON values (a derived
/// struct per nesting level would cost the wasm more than walking them).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Output {
    content: Option<String>,
    refusal: Option<Value>,
    reasoning_content: Option<Value>,
    reasoning: Option<Value>,
    /// `[{"function": {"name", "arguments"}}]`.
    tool_calls: Option<Value>,
    /// The legacy single call: `{"name", "arguments"}`.
    function_call: Option<Value>,
}

impl Output {
    /// The other output's pieces, as text, in the order named above (empty ones left out).
    fn other_pieces(self) -> Vec<String> {
        let mut functions = Vec::new();
        if let Some(Value::Array(calls)) = self.tool_calls {
            for mut call in calls {
                functions.extend(call.get_mut("function").map(Value::take));
            }
        }
        functions.extend(self.function_call);
        let mut pieces = vec![self.refusal, self.reasoning_content, self.reasoning];
        for mut function in functions {
            pieces.push(function.get_mut("name").map(Value::take));
            pieces.push(function.get_mut("arguments").map(Value::take));
        }
        pieces.into_iter().flatten().map(loose_text).filter(|t| !t.is_empty()).collect()
    }
}

/// One `data:` event: a `chat.completion.chunk`, an `{"error": ..}` or `[DONE]`.
/// Role-only deltas add nothing; refusals, reasoning and tool calls are other output.
pub(super) fn decode_event(event: &SseEvent, sink: &mut Sink) {
    let data = event.data.trim();
    if data == "[DONE]" {
        return sink.push(StreamEvent::Done);
    }
    let Some(chunk) = json_object::<Answer>(data.as_bytes()) else {
        return sink.push(StreamEvent::Malformed);
    };
    if let Some(error) = &chunk.error {
        return sink.error(error_text(error));
    }
    if let Some(choice) = chunk.choices.and_then(|c| c.into_iter().next()) {
        if let Some(mut delta) = choice.delta {
            if let Some(text) = delta.content.take().filter(|t| !t.is_empty()) {
                sink.push(StreamEvent::Delta(text));
            }
            for piece in delta.other_pieces() {
                sink.push(StreamEvent::OtherOutput(piece));
            }
        }
        if let Some(reason) = choice.finish_reason {
            sink.push(StreamEvent::Finish(reason));
        }
    }
    if let Some(usage) = chunk.usage {
        sink.usage(usage.prompt_tokens, usage.completion_tokens);
    }
}

/// A `chat.completion` object: the first choice's text (empty for tool calls), the size of
/// its other output (tool calls, reasoning), its finish reason and the usage.
pub(super) fn decode_completion(body: Answer) -> Result<Completion, String> {
    if let Some(error) = &body.error {
        return Err(error_text(error).unwrap_or("upstream reported an error").to_owned());
    }
    let choice = body.choices.and_then(|c| c.into_iter().next()).ok_or("upstream answer has no choices")?;
    let mut message = choice.message.unwrap_or_default();
    let text = message.content.take().unwrap_or_default();
    Ok(Completion {
        text,
        other_output_chars: message.other_pieces().iter().map(|p| p.chars().count() as u64).sum(),
        usage: body.usage.as_ref().map(Counts::usage),
        finish_reason: choice.finish_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ChatMessage, Role, ToolChoice};
    use super::*;

    fn conversation() -> Vec<ChatMessage> {
        vec![ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "hi \"there\"")]
    }

    #[test]
    fn a_streaming_request_asks_for_usage_and_sends_the_key_as_a_bearer_token() {
        let messages = conversation();
        let half = RawValue::from_string("0.5".into()).unwrap();
        let req = ChatRequest {
            model: "gpt-4o-mini",
            messages: &messages,
            max_tokens: Some(256),
            temperature: Some(&half),
            stream: true,
            tools: &[],
            tool_choice: ToolChoice::Auto,
        };
        let built = build(Some("sk-test"), &req);
        assert_eq!(built.path, "/chat/completions");
        assert_eq!(
            built.headers,
            [
                ("authorization".to_owned(), "Bearer sk-test".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        assert_eq!(
            built.body,
            r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi \"there\""}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":256,"temperature":0.5}"#
        );
    }

    #[test]
    fn a_plain_request_without_a_key_omits_the_header_and_unset_fields() {
        let messages = conversation();
        let req = ChatRequest {
            model: "m",
            messages: &messages[1..],
            max_tokens: None,
            temperature: None,
            stream: false,
            tools: &[],
            tool_choice: ToolChoice::Auto,
        };
        let built = build(None, &req);
        assert!(built.headers.iter().all(|(name, _)| name != "authorization"));
        assert_eq!(built.body, r#"{"model":"m","messages":[{"role":"user","content":"hi \"there\""}],"stream":false}"#);
    }
}
