//! Chat Completions output for answers that did not come from an OpenAI-format upstream
//! (translated providers, other dialects' upstreams, cache replays): `chat.completion`
//! objects and `chat.completion.chunk` SSE events, tool calls included.

use serde::Serialize;

use super::{Finish, StreamWriter, Whole};
use crate::gateway::{OpenAiError, ResponseMeta};
use crate::llm::{to_json, ToolCall, ToolCallDelta, Usage};

/// The event that ends every Chat Completions stream.
pub const DONE_EVENT: &str = "data: [DONE]\n\n";

/// OpenAI's `usage` object.
#[derive(Serialize)]
struct UsageJson {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl From<&Usage> for UsageJson {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
        }
    }
}

/// A `chat.completion` object.
#[derive(Serialize)]
struct CompletionJson<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: UsageJson,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    /// Always `null`.
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    /// `null` when the answer is only tool calls.
    content: Option<&'a str>,
    /// Always `null`.
    refusal: (),
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallJson<'a>>,
}

/// A whole tool call: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Serialize)]
struct CallJson<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionJson<'a>,
}

#[derive(Serialize)]
struct FunctionJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl<'a> From<&'a ToolCall> for CallJson<'a> {
    fn from(call: &'a ToolCall) -> Self {
        let function = FunctionJson { name: Some(&call.name), arguments: &call.arguments };
        Self { id: &call.id, kind: "function", function }
    }
}

/// A `chat.completion.chunk` object.
#[derive(Serialize)]
struct ChunkJson<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    /// Left out, `null` (when the client asked for usage, on every chunk but the last), or the
    /// usage (the last chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<UsageJson>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    /// Always `null`.
    logprobs: (),
    finish_reason: Option<&'static str>,
}

/// A chunk's delta: the assistant's role (on the first chunk), text, a tool call's fragment,
/// or nothing (`{}`).
#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[CallFragment<'a>; 1]>,
}

/// A streamed tool call's fragment: the first names the call's id and function, the others add
/// to its arguments; `index` tells the calls of one answer apart.
#[derive(Serialize)]
struct CallFragment<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionJson<'a>,
}

/// A `chat.completion` object.
pub(super) fn completion_json(meta: &ResponseMeta, answer: &Whole) -> String {
    let content = (!answer.text.is_empty() || answer.tool_calls.is_empty()).then_some(answer.text);
    to_json(&CompletionJson {
        id: &meta.id,
        object: "chat.completion",
        created: meta.created,
        model: &meta.model,
        choices: [CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                refusal: (),
                tool_calls: answer.tool_calls.iter().map(CallJson::from).collect(),
            },
            logprobs: (),
            finish_reason: answer.finish.openai(),
        }],
        usage: (&answer.usage).into(),
    })
}

/// The final usage chunk (`choices: []`) sent when the client asked for `include_usage`.
pub fn usage_event(meta: &ResponseMeta, usage: &Usage) -> String {
    let chunk = ChunkJson {
        id: &meta.id,
        object: "chat.completion.chunk",
        created: meta.created,
        model: &meta.model,
        choices: &[],
        usage: Some(Some(usage.into())),
    };
    format!("data: {}\n\n", to_json(&chunk))
}

/// A translated answer as `chat.completion.chunk` events.
pub struct ChatChunks {
    meta: ResponseMeta,
    include_usage: bool,
    /// The upstream's index of each tool call seen, in order: a call's place here is its
    /// Chat Completions index (Anthropic numbers content blocks, text ones included, where
    /// clients expect the calls counted from 0).
    calls: Vec<usize>,
}

impl ChatChunks {
    pub fn new(meta: ResponseMeta, include_usage: bool) -> Self {
        Self { meta, include_usage, calls: Vec::new() }
    }

    /// The Chat Completions index of the call the upstream numbers `upstream`.
    fn call_index(&mut self, upstream: usize) -> usize {
        match self.calls.iter().position(|&i| i == upstream) {
            Some(at) => at,
            None => {
                self.calls.push(upstream);
                self.calls.len() - 1
            }
        }
    }

    /// One `data: {chat.completion.chunk}` event with one choice.
    fn chunk(&self, delta: Delta, finish: Option<&'static str>) -> String {
        let choices = [ChunkChoice { index: 0, delta, logprobs: (), finish_reason: finish }];
        let chunk = ChunkJson {
            id: &self.meta.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            choices: &choices,
            usage: self.include_usage.then_some(None),
        };
        format!("data: {}\n\n", to_json(&chunk))
    }
}

impl StreamWriter for ChatChunks {
    fn open(&mut self) -> String {
        self.chunk(Delta { role: Some("assistant"), content: Some(""), ..Delta::default() }, None)
    }

    fn text(&mut self, text: &str) -> String {
        self.chunk(Delta { content: Some(text), ..Delta::default() }, None)
    }

    fn tool_call(&mut self, fragment: &ToolCallDelta) -> String {
        let call = CallFragment {
            index: self.call_index(fragment.index),
            id: fragment.id.as_deref(),
            kind: fragment.id.is_some().then_some("function"),
            function: FunctionJson { name: fragment.name.as_deref(), arguments: &fragment.arguments },
        };
        self.chunk(Delta { tool_calls: Some([call]), ..Delta::default() }, None)
    }

    fn close(&mut self, finish: Finish, usage: &Usage) -> String {
        let mut tail = self.chunk(Delta::default(), Some(finish.openai()));
        if self.include_usage {
            tail.push_str(&usage_event(&self.meta, usage));
        }
        tail.push_str(DONE_EVENT);
        tail
    }

    fn fail(&mut self, code: &'static str) -> String {
        let err = OpenAiError {
            status: 502,
            message: "the model's stream ended early".into(),
            kind: "server_error",
            param: None,
            code: Some(code),
        };
        format!("data: {}\n\n", err.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn meta() -> ResponseMeta {
        ResponseMeta { id: "chatcmpl-1".into(), created: 5, model: "m \"q\"".into(), prompt_estimate: 0, echo: None }
    }

    fn read(text: &str) -> Value {
        serde_json::from_str(text.trim_start_matches("data: ").trim_end()).unwrap()
    }

    /// Every event of a stream, as JSON (`[DONE]` as a string).
    fn events(text: &str) -> Vec<Value> {
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| match e.strip_prefix("data: ") {
                Some("[DONE]") => json!("[DONE]"),
                Some(data) => serde_json::from_str(data).unwrap(),
                None => panic!("not a data event: {e}"),
            })
            .collect()
    }

    fn with_head(mut v: Value) -> Value {
        let head = json!({ "id": "chatcmpl-1", "created": 5, "model": "m \"q\"" });
        v.as_object_mut().unwrap().extend(head.as_object().unwrap().clone());
        v
    }

    const USAGE: Usage = Usage { prompt_tokens: 2, completion_tokens: 1 };

    #[test]
    fn a_whole_answer_is_a_chat_completion() {
        let answer = Whole { text: "hi\n", tool_calls: &[], finish: Finish::Stop, usage: USAGE };
        assert_eq!(
            read(&completion_json(&meta(), &answer)),
            with_head(json!({ "object": "chat.completion",
                "usage": { "prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3 },
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": "hi\n", "refusal": null },
                              "logprobs": null, "finish_reason": "stop" }] }))
        );
    }

    #[test]
    fn a_whole_answer_of_tool_calls_has_null_content_and_the_calls() {
        let calls =
            [ToolCall { id: "toolu_1".into(), name: "get_weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }];
        let answer = Whole { text: "", tool_calls: &calls, finish: Finish::of("tool_use"), usage: USAGE };
        let v = read(&completion_json(&meta(), &answer));
        assert_eq!(
            v["choices"][0]["message"],
            json!({ "role": "assistant", "content": null, "refusal": null, "tool_calls": [
                { "id": "toolu_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } }
            ] })
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn a_stream_opens_with_the_role_and_ends_with_finish_usage_and_done() {
        let mut w = ChatChunks::new(meta(), true);
        let text = [w.open(), w.text("x"), w.close(Finish::Length, &USAGE)].concat();
        let chunk = |delta: Value, finish: Value| {
            with_head(json!({ "object": "chat.completion.chunk", "usage": null,
                "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }] }))
        };
        assert_eq!(
            events(&text),
            vec![
                chunk(json!({ "role": "assistant", "content": "" }), Value::Null),
                chunk(json!({ "content": "x" }), Value::Null),
                chunk(json!({}), json!("length")),
                with_head(json!({ "object": "chat.completion.chunk", "choices": [],
                    "usage": { "prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3 } })),
                json!("[DONE]"),
            ]
        );
        // Without include_usage there is no usage member and no usage chunk.
        let mut w = ChatChunks::new(meta(), false);
        let plain = events(&[w.open(), w.close(Finish::Stop, &USAGE)].concat());
        assert_eq!(plain.len(), 3);
        assert!(plain[0].get("usage").is_none());
    }

    #[test]
    fn tool_call_fragments_are_delta_tool_calls() {
        let mut w = ChatChunks::new(meta(), false);
        // Block 1 (after a text block): the answer's first call, index 0.
        let first =
            ToolCallDelta { index: 1, id: Some("toolu_9".into()), name: Some("f".into()), arguments: String::new() };
        let more = ToolCallDelta { index: 1, id: None, name: None, arguments: "{\"a\":".into() };
        assert_eq!(
            read(&w.tool_call(&first))["choices"][0]["delta"],
            json!({ "tool_calls": [{ "index": 0, "id": "toolu_9", "type": "function", "function": { "name": "f", "arguments": "" } }] })
        );
        assert_eq!(
            read(&w.tool_call(&more))["choices"][0]["delta"],
            json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"a\":" } }] })
        );
        let second =
            ToolCallDelta { index: 2, id: Some("toolu_8".into()), name: Some("g".into()), arguments: String::new() };
        assert_eq!(read(&w.tool_call(&second))["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
        assert_eq!(read(&w.tool_call(&more))["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    }

    #[test]
    fn a_broken_stream_ends_with_an_openai_error_event() {
        let mut w = ChatChunks::new(meta(), false);
        assert_eq!(
            read(&w.fail("upstream_timeout")),
            json!({ "error": { "message": "the model's stream ended early", "type": "server_error", "param": null,
                               "code": "upstream_timeout" } })
        );
    }
}
