//! The OpenAI Chat Completions wire format (and compatible APIs): request body, stream chunks
//! and `chat.completion` answers.

use crate::json::Value;
use crate::json_out::Object;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_message, has_error, json_object, str_at, u64_at, wire_messages, with_sampling};
use super::{Completion, StreamEvent, Usage};

/// `POST {base}/chat/completions`, for base URLs that end in `/v1`.
pub(super) fn build(api_key: Option<&str>, req: &ChatRequest) -> UpstreamRequest {
    let mut body =
        Object::new().str("model", req.model).raw("messages", &wire_messages(req.messages)).bool("stream", req.stream);
    if req.stream {
        // Without it a stream reports no usage at all.
        body = body.raw("stream_options", r#"{"include_usage":true}"#);
    }
    let mut headers = Vec::new();
    if let Some(key) = api_key {
        headers.push(("authorization".to_owned(), format!("Bearer {key}")));
    }
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    UpstreamRequest { path: "/chat/completions".to_owned(), headers, body: with_sampling(body, req).end() }
}

/// One `data:` event: a `chat.completion.chunk`, an `{"error": ..}` or `[DONE]`.
/// Role-only deltas, refusals and tool calls add no text.
pub(super) fn decode_event(event: &SseEvent, sink: &mut Sink) {
    let data = event.data.trim();
    if data == "[DONE]" {
        return sink.push(StreamEvent::Done);
    }
    let Some(chunk) = json_object(data.as_bytes()) else {
        return sink.push(StreamEvent::Malformed);
    };
    if has_error(&chunk) {
        return sink.error(error_message(&chunk));
    }
    if let Some(text) = str_at(&chunk, "/choices/0/delta/content").filter(|t| !t.is_empty()) {
        sink.push(StreamEvent::Delta(text.to_owned()));
    }
    if let Some(reason) = str_at(&chunk, "/choices/0/finish_reason") {
        sink.push(StreamEvent::Finish(reason.to_owned()));
    }
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        sink.usage(u64_at(usage, "/prompt_tokens"), u64_at(usage, "/completion_tokens"));
    }
}

/// A `chat.completion` object: the first choice's text (empty for tool calls), its finish
/// reason and the usage.
pub(super) fn decode_completion(body: &Value) -> Result<Completion, String> {
    if has_error(body) {
        return Err(error_message(body).unwrap_or("upstream reported an error").to_owned());
    }
    let choice = body.pointer("/choices/0").ok_or("upstream answer has no choices")?;
    Ok(Completion {
        text: str_at(choice, "/message/content").unwrap_or_default().to_owned(),
        usage: body.get("usage").filter(|u| u.is_object()).map(|u| Usage {
            prompt_tokens: u64_at(u, "/prompt_tokens").unwrap_or(0),
            completion_tokens: u64_at(u, "/completion_tokens").unwrap_or(0),
        }),
        finish_reason: str_at(choice, "/finish_reason").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ChatMessage, Role};
    use super::*;

    fn conversation() -> Vec<ChatMessage> {
        vec![ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "hi \"there\"")]
    }

    #[test]
    fn a_streaming_request_asks_for_usage_and_sends_the_key_as_a_bearer_token() {
        let messages = conversation();
        let half = "0.5".parse().unwrap();
        let req = ChatRequest {
            model: "gpt-4o-mini",
            messages: &messages,
            max_tokens: Some(256),
            temperature: Some(&half),
            stream: true,
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
        let req =
            ChatRequest { model: "m", messages: &messages[1..], max_tokens: None, temperature: None, stream: false };
        let built = build(None, &req);
        assert!(built.headers.iter().all(|(name, _)| name != "authorization"));
        assert_eq!(built.body, r#"{"model":"m","messages":[{"role":"user","content":"hi \"there\""}],"stream":false}"#);
    }
}
