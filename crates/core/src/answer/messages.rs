//! Anthropic Messages output for answers that did not come from an Anthropic upstream
//! (translated providers, cache replays): `message` objects and the Messages SSE events
//! (`message_start`, content blocks of text and `tool_use`, `message_delta`, `message_stop`),
//! and Anthropic's error bodies.

use serde::Serialize;

use super::{Finish, StreamWriter, Whole};
use crate::gateway::ResponseMeta;
use crate::llm::{to_json, ToolCall, ToolCallDelta, ToolInput, Usage};

/// Anthropic's `stop_reason` for a finish.
fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

/// Anthropic's error `type` for an HTTP status, so an SDK raises the matching class.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// `{"type": "error", "error": {"type", "message"}}` of an error type.
pub fn error_json(kind: &str, message: &str) -> String {
    to_json(&ErrorBody { kind: "error", error: ErrorDetail { kind, message } })
}

/// Anthropic's `usage` object.
#[derive(Serialize)]
struct UsageJson {
    input_tokens: u64,
    output_tokens: u64,
}

/// A `message` object (whole, or empty as `message_start` carries it).
#[derive(Serialize)]
struct MessageJson<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    /// Always `null`: which stop sequence matched is not known after translation.
    stop_sequence: (),
    usage: UsageJson,
}

/// A content block of an answer.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: ToolInput<'a> },
}

impl<'a> From<&'a ToolCall> for Block<'a> {
    fn from(call: &'a ToolCall) -> Self {
        Block::ToolUse { id: &call.id, name: &call.name, input: ToolInput::of(&call.arguments) }
    }
}

/// A whole answer as a `message` object: its text block (when there is text) and a `tool_use`
/// block per call.
pub(super) fn message_json(meta: &ResponseMeta, answer: &Whole) -> String {
    let mut content = Vec::with_capacity(answer.tool_calls.len() + 1);
    if !answer.text.is_empty() {
        content.push(Block::Text { text: answer.text });
    }
    content.extend(answer.tool_calls.iter().map(Block::from));
    to_json(&MessageJson {
        id: &meta.id,
        kind: "message",
        role: "assistant",
        model: &meta.model,
        content,
        stop_reason: Some(stop_reason(answer.finish)),
        stop_sequence: (),
        usage: UsageJson { input_tokens: answer.usage.prompt_tokens, output_tokens: answer.usage.completion_tokens },
    })
}

/// One streamed event's data.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart { message: MessageJson<'a> },
    ContentBlockStart { index: usize, content_block: StartBlock<'a> },
    ContentBlockDelta { index: usize, delta: BlockDelta<'a> },
    ContentBlockStop { index: usize },
    MessageDelta { delta: MessageDelta, usage: UsageJson },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }

    /// `event: NAME` and `data: {...}`.
    fn sse(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.name(), to_json(self))
    }
}

/// A block as `content_block_start` opens it (empty).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text { text: &'static str },
    ToolUse { id: &'a str, name: &'a str, input: Empty },
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

/// The block being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    /// A tool call's block: (block index, the call's index among the answer's calls).
    Tool(usize, usize),
}

/// A translated answer as Messages SSE events. `message_start` reports the prompt's estimate
/// as its input tokens (the upstream's count is not known yet); `message_delta` reports the
/// final counts, input tokens included.
pub struct MessageEvents {
    meta: ResponseMeta,
    /// The block being written, if any.
    open: Option<Open>,
    /// The next block's index.
    next: usize,
    /// Each tool call's block, by the call's index.
    calls: Vec<(usize, usize)>,
}

impl MessageEvents {
    pub fn new(meta: ResponseMeta) -> Self {
        Self { meta, open: None, next: 0, calls: Vec::new() }
    }

    /// Closes the open block, if any.
    fn stop(&mut self) -> String {
        match self.open.take() {
            Some(Open::Text(index) | Open::Tool(index, _)) => Event::ContentBlockStop { index }.sse(),
            None => String::new(),
        }
    }

    /// Opens a block (closing the open one).
    fn start(&mut self, open: impl FnOnce(usize) -> Open, block: StartBlock) -> (String, usize) {
        let mut out = self.stop();
        let index = self.next;
        self.next += 1;
        self.open = Some(open(index));
        out.push_str(&Event::ContentBlockStart { index, content_block: block }.sse());
        (out, index)
    }
}

impl StreamWriter for MessageEvents {
    fn open(&mut self) -> String {
        let message = MessageJson {
            id: &self.meta.id,
            kind: "message",
            role: "assistant",
            model: &self.meta.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: (),
            usage: UsageJson { input_tokens: self.meta.prompt_estimate, output_tokens: 0 },
        };
        Event::MessageStart { message }.sse()
    }

    fn text(&mut self, text: &str) -> String {
        let (mut out, index) = match self.open {
            Some(Open::Text(index)) => (String::new(), index),
            _ => self.start(Open::Text, StartBlock::Text { text: "" }),
        };
        out.push_str(&Event::ContentBlockDelta { index, delta: BlockDelta::TextDelta { text } }.sse());
        out
    }

    fn tool_call(&mut self, fragment: &ToolCallDelta) -> String {
        let known = self.calls.iter().find(|(call, _)| *call == fragment.index).map(|&(_, block)| block);
        let (mut out, index) = match (known, &fragment.id) {
            (Some(block), _) => (String::new(), block),
            (None, id) => {
                // A provider that never named the call still gets a block with an id.
                let fallback = format!("toolu_{}", fragment.index);
                let id = id.as_deref().unwrap_or(&fallback);
                let name = fragment.name.as_deref().unwrap_or_default();
                let call = fragment.index;
                let (out, block) =
                    self.start(|i| Open::Tool(i, call), StartBlock::ToolUse { id, name, input: Empty {} });
                self.calls.push((call, block));
                (out, block)
            }
        };
        if !fragment.arguments.is_empty() {
            let delta = BlockDelta::InputJsonDelta { partial_json: &fragment.arguments };
            out.push_str(&Event::ContentBlockDelta { index, delta }.sse());
        }
        out
    }

    fn close(&mut self, finish: Finish, usage: &Usage) -> String {
        let mut out = self.stop();
        let delta = MessageDelta { stop_reason: stop_reason(finish), stop_sequence: () };
        let usage = UsageJson { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens };
        out.push_str(&Event::MessageDelta { delta, usage }.sse());
        out.push_str(&Event::MessageStop.sse());
        out
    }

    fn fail(&mut self, code: &'static str) -> String {
        let kind = if code == "upstream_timeout" { "timeout_error" } else { "api_error" };
        format!("event: error\ndata: {}\n\n", error_json(kind, "the model's stream ended early"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn meta() -> ResponseMeta {
        ResponseMeta { id: "msg_1".into(), created: 5, model: "claude".into(), prompt_estimate: 7, echo: None }
    }

    /// Every event of a stream: (name, data).
    fn events(text: &str) -> Vec<(String, Value)> {
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name.as_str(), "the data's type is the event's name");
                (name, data)
            })
            .collect()
    }

    const USAGE: Usage = Usage { prompt_tokens: 9, completion_tokens: 3 };

    #[test]
    fn a_whole_text_answer_is_a_message() {
        let answer = Whole { text: "hi", tool_calls: &[], finish: Finish::Stop, usage: USAGE };
        let v: Value = serde_json::from_str(&message_json(&meta(), &answer)).unwrap();
        assert_eq!(
            v,
            json!({ "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                "content": [{ "type": "text", "text": "hi" }], "stop_reason": "end_turn", "stop_sequence": null,
                "usage": { "input_tokens": 9, "output_tokens": 3 } })
        );
    }

    #[test]
    fn a_whole_tool_answer_has_tool_use_blocks_with_parsed_input() {
        let calls = [
            ToolCall { id: "call_1".into(), name: "get_weather".into(), arguments: r#"{"city":"Oslo"}"#.into() },
            ToolCall { id: "call_2".into(), name: "f".into(), arguments: "not json".into() },
        ];
        let answer = Whole { text: "", tool_calls: &calls, finish: Finish::ToolCalls, usage: USAGE };
        let v: Value = serde_json::from_str(&message_json(&meta(), &answer)).unwrap();
        assert_eq!(
            v["content"],
            json!([
                { "type": "tool_use", "id": "call_1", "name": "get_weather", "input": { "city": "Oslo" } },
                { "type": "tool_use", "id": "call_2", "name": "f", "input": {} },
            ])
        );
        assert_eq!(v["stop_reason"], "tool_use");
    }

    #[test]
    fn a_stream_is_message_start_blocks_message_delta_and_message_stop() {
        let mut w = MessageEvents::new(meta());
        let text = [w.open(), w.text("He"), w.text("llo"), w.close(Finish::Length, &USAGE)].concat();
        let got = events(&text);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            got[0].1["message"],
            json!({ "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": { "input_tokens": 7, "output_tokens": 0 } })
        );
        assert_eq!(got[1].1["content_block"], json!({ "type": "text", "text": "" }));
        assert_eq!(
            got[3].1,
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "llo" } })
        );
        assert_eq!(got[4].1, json!({ "type": "content_block_stop", "index": 0 }));
        assert_eq!(
            got[5].1,
            json!({ "type": "message_delta", "delta": { "stop_reason": "max_tokens", "stop_sequence": null },
                "usage": { "input_tokens": 9, "output_tokens": 3 } })
        );
    }

    #[test]
    fn tool_call_fragments_are_tool_use_blocks_after_the_text() {
        let mut w = MessageEvents::new(meta());
        let call = |index, id: Option<&str>, args: &str| ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: id.map(|_| "get_weather".into()),
            arguments: args.into(),
        };
        let text = [
            w.open(),
            w.text("Let me check."),
            w.tool_call(&call(0, Some("call_a"), "")),
            w.tool_call(&call(0, None, "{\"city\":")),
            w.tool_call(&call(1, Some("call_b"), "{}")),
            w.tool_call(&call(0, None, "\"Oslo\"}")),
            w.close(Finish::ToolCalls, &USAGE),
        ]
        .concat();
        let got = events(&text);
        let blocks: Vec<Value> =
            got.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d.clone()).collect();
        assert_eq!(
            blocks,
            [
                json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
                json!({ "type": "content_block_start", "index": 1,
                    "content_block": { "type": "tool_use", "id": "call_a", "name": "get_weather", "input": {} } }),
                json!({ "type": "content_block_start", "index": 2,
                    "content_block": { "type": "tool_use", "id": "call_b", "name": "get_weather", "input": {} } }),
            ]
        );
        // Each call's arguments go to its own block, whichever block is open.
        let args = |index: u64| -> String {
            got.iter()
                .filter(|(n, d)| n == "content_block_delta" && d["index"] == index)
                .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(args(1), "{\"city\":\"Oslo\"}");
        assert_eq!(args(2), "{}");
        assert_eq!(got.iter().filter(|(n, _)| n == "content_block_stop").count(), 3);
        assert_eq!(got[got.len() - 2].1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn a_broken_stream_ends_with_an_error_event() {
        let mut w = MessageEvents::new(meta());
        let out = w.fail("upstream_error");
        assert_eq!(
            events(&out),
            [(
                "error".to_owned(),
                json!({ "type": "error", "error": { "type": "api_error", "message": "the model's stream ended early" } })
            )]
        );
    }

    #[test]
    fn statuses_have_anthropic_error_types() {
        assert_eq!(error_type(400), "invalid_request_error");
        assert_eq!(error_type(401), "authentication_error");
        assert_eq!(error_type(403), "permission_error");
        assert_eq!(error_type(404), "not_found_error");
        assert_eq!(error_type(413), "request_too_large");
        assert_eq!(error_type(415), "invalid_request_error");
        assert_eq!(error_type(429), "rate_limit_error");
        assert_eq!(error_type(500), "api_error");
        assert_eq!(error_type(502), "api_error");
        assert_eq!(error_type(529), "overloaded_error");
    }
}
