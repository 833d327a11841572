//! The pure half of the streaming chat engine: the types shared by SSE parsing, the
//! provider wire formats, model routing and context-window selection.
//!
//! The edge sends [`provider::build_request`]'s request upstream, feeds the response bytes to a
//! [`provider::StreamDecoder`] and re-encodes the resulting [`StreamEvent`]s for browsers with
//! [`sse::encode_event`].

pub mod context;
pub mod provider;
pub mod routing;
pub mod sse;

mod anthropic;
mod openai;
mod workers_ai;

/// A `tool_use` block's input as Anthropic takes it, for the Messages dialect's answers too.
pub(crate) use anthropic::Input as ToolInput;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, answering one of the assistant's calls.
    Tool,
}

impl Role {
    /// The role as the wire formats name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of a conversation (serialized only to hand a turn's context to the object that
/// runs it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// An assistant message's tool calls (empty otherwise).
    pub tool_calls: Vec<ToolCall>,
    /// A [`Role::Tool`] message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with this role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    /// An assistant message with its text (possibly empty) and the tools it called.
    pub fn assistant_calls(text: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, ..Self::new(Role::Assistant, text) }
    }

    /// A tool's result for the call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(tool_call_id.into()), ..Self::new(Role::Tool, content) }
    }
}

/// A tool call of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, as the model sent them (not necessarily valid JSON).
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// The JSON schema of its arguments (an object schema).
    pub parameters: &'a RawValue,
}

/// Whether the model may call the tools offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ToolChoice<'a> {
    /// The model decides (the providers' default).
    #[default]
    Auto,
    /// The model must answer in text.
    None,
    /// The model must call at least one of the tools.
    Required,
    /// The model must call the tool of this name.
    Tool(&'a str),
}

/// A piece of a streamed tool call. The providers send a call in fragments: the first names
/// its id and name, each one adds to its arguments; `index` tells the calls of one answer apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    pub index: usize,
    pub id: Option<String>,
    pub name: Option<String>,
    /// More of the arguments' JSON text (often empty on the first fragment).
    pub arguments: String,
}

/// Token counts as the upstream reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt and completion tokens together.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// Each count as the upstream `reported` it, or else (absent, or 0 where something was
    /// estimated) the `estimate`'s; and whether any count was estimated. So an upstream that
    /// reports nothing, or only the prompt (a stream cut after Anthropic's `message_start`),
    /// never makes a call free.
    pub fn reported_or(reported: Option<Usage>, estimate: Usage) -> (Usage, bool) {
        let reported = reported.unwrap_or_default();
        let prompt_estimated = reported.prompt_tokens == 0 && estimate.prompt_tokens > 0;
        let output_estimated = reported.completion_tokens == 0 && estimate.completion_tokens > 0;
        let usage = Usage {
            prompt_tokens: if prompt_estimated { estimate.prompt_tokens } else { reported.prompt_tokens },
            completion_tokens: if output_estimated { estimate.completion_tokens } else { reported.completion_tokens },
        };
        (usage, prompt_estimated || output_estimated)
    }
}

/// What a stream decoder makes of the upstream's events.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Text to append to the answer.
    Delta(String),
    /// Output that is billed but is not answer text (reasoning, refusals, calls of tools that
    /// were not offered): counted for usage estimates, never shown as chat text.
    OtherOutput(String),
    /// A fragment of a tool call (billed output, never chat text): the accumulator assembles
    /// them into [`ToolCall`]s.
    ToolCall(ToolCallDelta),
    /// Usage so far, merged over everything the upstream reported (the last one wins).
    Usage(Usage),
    /// The finish/stop reason as the upstream names it (`stop`, `length`, `end_turn`, ...).
    Finish(String),
    /// An error the upstream reported inside the stream (one line, at most 300 characters).
    Error(String),
    /// An event whose data could not be decoded: count it and go on.
    Malformed,
    /// The upstream's explicit end of stream (`[DONE]`, `message_stop`).
    Done,
}

/// A whole (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// The tool calls of the answer, in order (their names and arguments are also counted in
    /// `other_output_chars`).
    pub tool_calls: Vec<ToolCall>,
    /// Characters of billed output besides `text`: tool-call names and arguments, reasoning,
    /// refusals (for an estimate when the upstream reports no usage).
    pub other_output_chars: u64,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
}

impl Completion {
    /// The answer's estimated output tokens: its text and its other output.
    pub fn estimated_output_tokens(&self) -> u64 {
        u64::from(context::estimate_tokens(&self.text)) + context::estimate_chars(self.other_output_chars)
    }
}

/// A message as OpenAI-style APIs take it: `{"role": .., "content": ..}`.
#[derive(Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: &'a str,
}

/// The messages of a request as OpenAI-style APIs take them.
fn wire_messages(messages: &[ChatMessage]) -> Vec<WireMessage<'_>> {
    messages
        .iter()
        .map(|m| WireMessage { role: if m.role == Role::Tool { Role::User } else { m.role }, content: &m.content })
        .collect()
}

/// OpenAI-style token counts (`usage` of OpenAI and Workers AI), each as reported.
#[derive(Deserialize)]
struct Counts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl Counts {
    /// Whole-answer usage: a count the upstream left out is 0.
    fn usage(&self) -> Usage {
        Usage { prompt_tokens: self.prompt_tokens.unwrap_or(0), completion_tokens: self.completion_tokens.unwrap_or(0) }
    }
}

/// `value` as JSON text. The bodies written with it are derived structs with string keys,
/// which serde_json always serializes: the empty fallback is never taken.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A value that should be a string, as text: the string itself, or else its JSON text (some
/// compatible servers send tool arguments as an object).
fn loose_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => json_text(&other),
    }
}

/// `value` as JSON text (through the byte writer the rest of the crate uses: `to_string`
/// would compile the serializer once more).
fn json_text(value: &Value) -> String {
    String::from_utf8(serde_json::to_vec(value).unwrap_or_default()).unwrap_or_default()
}

/// The message of an `error` member: `"..."` or `{"message": "..."}`.
fn error_text(error: &Value) -> Option<&str> {
    error.as_str().or_else(|| error.get("message").and_then(Value::as_str))
}

/// The message of an `{"error": {"message": ..}}` or `{"error": "..."}` body.
fn error_message(value: &Value) -> Option<&str> {
    error_text(value.get("error")?)
}

/// `data` decoded as `T`, when it is a JSON object of `T`'s shape; `None` for anything else
/// (other JSON values included, which a derived struct would otherwise read as a sequence).
fn json_object<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let first = data.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(data).ok()
}

/// Longest upstream message passed on, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// An upstream's message made safe to log and show: control characters become spaces,
/// at most [`MAX_MESSAGE_CHARS`]; `None` when nothing is left.
fn clean_message(message: &str) -> Option<String> {
    let cleaned: String =
        message.trim().chars().take(MAX_MESSAGE_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    (!cleaned.trim().is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::provider::{decode_completion, upstream_error_message, Provider, StreamDecoder};
    use super::sse::SseParser;

    /// xorshift64: deterministic pseudo-random bytes without a crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Bytes biased towards SSE and JSON syntax, so the inputs reach deep into the parsers.
        fn bytes(&mut self) -> Vec<u8> {
            const PIECES: &[&[u8]] = &[
                b"data: ",
                b"event: ",
                b"id: ",
                b"\n",
                b"\r",
                b"\r\n",
                b":",
                b"{",
                b"}",
                b"\"",
                b"[DONE]",
                b"{\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}",
                b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":1},\"usage\":{\"output_tokens\":-1}}",
                b"{\"error\":{\"message\":null}}",
                b"{\"response\":\"\xf0\x9f\",\"usage\":[]}",
                b"\xef\xbb\xbf",
                b"\xff\xfe\xc3",
                b"message_start",
                b"content_block_delta",
                b"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c\",\"function\":{\"arguments\":\"{\\\"",
                b"{\"type\":\"content_block_start\",\"index\":18446744073709551615,\"content_block\":{\"type\":\"tool_use\"",
                b"{\"type\":\"input_json_delta\",\"partial_json\":\"",
            ];
            let len = (self.next() % 40) as usize;
            let mut out = Vec::new();
            for _ in 0..len {
                let r = self.next();
                if r.is_multiple_of(3) {
                    out.push((r >> 8) as u8);
                } else if let Some(piece) = PIECES.get((r >> 8) as usize % PIECES.len()) {
                    out.extend_from_slice(piece);
                }
            }
            out
        }
    }

    #[test]
    fn random_bytes_never_panic_any_parser_or_decoder() {
        let providers = [Provider::OpenAi, Provider::Anthropic, Provider::WorkersAi];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut parser = SseParser::new();
        let mut decoders = providers.map(StreamDecoder::new);
        let mut accumulators = providers.map(|_| crate::chat::Accumulator::default());
        for _ in 0..500 {
            let input = rng.bytes();
            parser.feed(&input);
            let cut = input.len() / 2;
            for ((provider, decoder), acc) in providers.iter().zip(decoders.iter_mut()).zip(accumulators.iter_mut()) {
                let events = decoder.feed(input.get(..cut).unwrap_or_default());
                for event in events.into_iter().chain(decoder.feed(input.get(cut..).unwrap_or_default())) {
                    acc.apply(event);
                }
                let _ = acc.tool_calls();
                let _ = decode_completion(*provider, &input);
                let _ = upstream_error_message(*provider, 500, &input);
            }
        }
        parser.finish();
        for decoder in &mut decoders {
            decoder.finish();
            let _ = decoder.usage();
        }
    }
}
