//! A translated answer written in the dialect the client spoke (Chat Completions and
//! Anthropic Messages; Responses builds on the same seam): the relay decodes any provider's stream
//! into [`StreamEvent`](crate::llm::StreamEvent)s and hands each piece to the dialect's
//! [`StreamWriter`]; a whole answer is written at once by [`whole`].

mod chat_completions;
mod messages;
mod responses;

use crate::gateway::ResponseMeta;
use crate::llm::provider::Provider;
use crate::llm::{ToolCall, ToolCallDelta, Usage};

pub use chat_completions::{usage_event, ChatChunks, DONE_EVENT};
pub use messages::{error_json as messages_error_json, error_type as messages_error_type, MessageEvents};
pub use responses::ResponseEvents;

/// The API a client called, which its answer must speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/messages` (Anthropic Messages).
    Messages,
}

impl Dialect {
    /// The prefix of its answers' ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Dialect::ChatCompletions => "chatcmpl-",
            Dialect::Responses => "resp_",
            Dialect::Messages => "msg_",
        }
    }

    /// The upstream provider that already speaks this dialect: its answer reaches the client
    /// as the upstream sent it, untranslated.
    pub fn native(self) -> Option<Provider> {
        match self {
            Dialect::ChatCompletions => Some(Provider::OpenAi),
            // Every Responses answer is written here, from a chat upstream's.
            Dialect::Responses => None,
            Dialect::Messages => Some(Provider::Anthropic),
        }
    }
}

/// Why an answer ended, whatever the provider called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl Finish {
    /// The reason a provider (or a cached answer, which keeps OpenAI's names) gave.
    pub fn of(reason: &str) -> Self {
        match reason {
            "length" | "max_tokens" => Finish::Length,
            "tool_calls" | "tool_use" => Finish::ToolCalls,
            "content_filter" | "refusal" => Finish::ContentFilter,
            _ => Finish::Stop,
        }
    }

    /// OpenAI's name for it.
    pub fn openai(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::ContentFilter => "content_filter",
        }
    }
}

/// A whole (non-streamed or cached) answer.
#[derive(Debug, Clone, Copy)]
pub struct Whole<'a> {
    pub text: &'a str,
    pub tool_calls: &'a [ToolCall],
    pub finish: Finish,
    pub usage: Usage,
}

/// Writes one streamed answer in a dialect, piece by piece, as the SSE bytes to send.
pub trait StreamWriter {
    /// What opens the stream, before any text.
    fn open(&mut self) -> String;
    /// More answer text.
    fn text(&mut self, text: &str) -> String;
    /// A fragment of a tool call.
    fn tool_call(&mut self, fragment: &ToolCallDelta) -> String;
    /// The end of a complete answer.
    fn close(&mut self, finish: Finish, usage: &Usage) -> String;
    /// The end of a stream the model broke off (`code`: `upstream_error`, `upstream_timeout`).
    fn fail(&mut self, code: &'static str) -> String;
    /// The output items of the answer written, by id, as JSON, when its dialect keeps them
    /// for later requests to refer to (Responses asked with `store`).
    fn kept_items(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The writer of a streamed answer in `dialect`; `include_usage`: the client asked for the
/// usage at the end (Chat Completions' `stream_options.include_usage`; a Messages stream
/// always reports it).
pub fn stream_writer(dialect: Dialect, meta: &ResponseMeta, include_usage: bool) -> Box<dyn StreamWriter> {
    match dialect {
        Dialect::ChatCompletions => Box::new(ChatChunks::new(meta.clone(), include_usage)),
        // A response's usage is always in its last event.
        Dialect::Responses => Box::new(ResponseEvents::new(meta.clone())),
        Dialect::Messages => Box::new(MessageEvents::new(meta.clone())),
    }
}

/// A whole answer in `dialect`.
pub fn whole(dialect: Dialect, meta: &ResponseMeta, answer: &Whole) -> String {
    match dialect {
        Dialect::ChatCompletions => chat_completions::completion_json(meta, answer),
        Dialect::Responses => responses::response_object(meta, answer),
        Dialect::Messages => messages::message_json(meta, answer),
    }
}

/// A whole answer's output items to keep, by id, as JSON (see [`StreamWriter::kept_items`]).
pub fn kept_items(dialect: Dialect, meta: &ResponseMeta, answer: &Whole) -> Vec<(String, String)> {
    match dialect {
        Dialect::Responses => responses::whole_items(meta, answer),
        Dialect::ChatCompletions | Dialect::Messages => Vec::new(),
    }
}

/// A whole answer written as a stream (a cached answer replayed to a streaming client): its
/// text in pieces at word boundaries, so it arrives like a live one.
pub fn replayed_stream(writer: &mut dyn StreamWriter, answer: &Whole) -> String {
    let mut body = writer.open();
    for piece in replay_pieces(answer.text) {
        body.push_str(&writer.text(piece));
    }
    body.push_str(&writer.close(answer.finish, &answer.usage));
    body
}

/// Splits text into pieces at word boundaries (each piece keeps its leading space).
pub fn replay_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices().skip(1) {
        if c == ' ' {
            pieces.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_pieces_rejoin_to_the_text() {
        let text = "one two  three four";
        let pieces = replay_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.len() >= 4);
        assert!(replay_pieces("").is_empty());
        assert_eq!(replay_pieces("word"), vec!["word"]);
    }

    #[test]
    fn every_provider_reason_has_one_finish() {
        assert_eq!(Finish::of("end_turn"), Finish::Stop);
        assert_eq!(Finish::of("max_tokens").openai(), "length");
        assert_eq!(Finish::of("tool_use").openai(), "tool_calls");
        // A cached answer keeps OpenAI's names: they read back the same.
        for f in [Finish::Stop, Finish::Length, Finish::ToolCalls, Finish::ContentFilter] {
            assert_eq!(Finish::of(f.openai()), f);
        }
    }
}
