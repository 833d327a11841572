//! The Cloudflare Workers AI text-generation format, as the `AI` binding takes and returns
//! it: input object, `{"response": ..}` stream events and answers, error bodies.

use crate::json::Value;
use crate::json_out::Object;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_message, has_error, json_object, str_at, u64_at, wire_messages, with_sampling};
use super::{Completion, StreamEvent, Usage};

/// The input for `env.AI.run(model, body)`: `path` carries the model id, there are no headers
/// (the binding authenticates itself).
pub(super) fn build(req: &ChatRequest) -> UpstreamRequest {
    let body = Object::new().raw("messages", &wire_messages(req.messages)).bool("stream", req.stream);
    UpstreamRequest { path: req.model.to_owned(), headers: Vec::new(), body: with_sampling(body, req).end() }
}

/// One `data:` event: `{"response": "text", "usage": {..}?}` or `[DONE]`. The stream names no
/// finish reason.
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
    if let Some(text) = str_at(&chunk, "/response").filter(|t| !t.is_empty()) {
        sink.push(StreamEvent::Delta(text.to_owned()));
    }
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        sink.usage(u64_at(usage, "/prompt_tokens"), u64_at(usage, "/completion_tokens"));
    }
}

/// A whole answer: the binding's `{"response": ..}` or the REST API's `{"result": {..}}`.
pub(super) fn decode_completion(body: &Value) -> Result<Completion, String> {
    if has_error(body) || body.pointer("/errors/0").is_some() {
        let message = rest_error_message(body).unwrap_or("upstream reported an error");
        return Err(message.to_owned());
    }
    let result = body.get("result").filter(|r| r.is_object()).unwrap_or(body);
    let text = str_at(result, "/response").ok_or("upstream answer has no response")?;
    Ok(Completion {
        text: text.to_owned(),
        usage: result.get("usage").filter(|u| u.is_object()).map(|u| Usage {
            prompt_tokens: u64_at(u, "/prompt_tokens").unwrap_or(0),
            completion_tokens: u64_at(u, "/completion_tokens").unwrap_or(0),
        }),
        finish_reason: None,
    })
}

/// The message of a REST error body (`{"errors": [{"message": ..}]}`) or an `error` member.
pub(super) fn rest_error_message(body: &Value) -> Option<&str> {
    str_at(body, "/errors/0/message").or_else(|| error_message(body))
}

#[cfg(test)]
mod tests {
    use super::super::{ChatMessage, Role};
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
        };
        let built = build(&req);
        assert_eq!(built.path, "@cf/meta/llama-3.1-8b-instruct");
        assert!(built.headers.is_empty());
        assert_eq!(
            built.body,
            r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"stream":true,"max_tokens":100}"#
        );
    }
}
