//! Responses API output (`POST /v1/responses`): `response` objects and the typed SSE events
//! of a streamed one (`response.created` ... `response.completed`), with text in a `message`
//! item and each tool call in a `function_call` item. No upstream speaks it here, so every
//! answer is written by this module.

use serde::Serialize;

use super::{Finish, StreamWriter, Whole};
use crate::gateway::ResponseMeta;
use crate::llm::{to_json, ToolCall, ToolCallDelta, Usage};
use crate::responses::Echo;

/// OpenAI's Responses `usage` object.
#[derive(Serialize)]
struct UsageJson {
    input_tokens: u64,
    input_tokens_details: CachedTokens,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

impl From<&Usage> for UsageJson {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            input_tokens_details: CachedTokens { cached_tokens: 0 },
            output_tokens: u.completion_tokens,
            output_tokens_details: ReasoningTokens { reasoning_tokens: 0 },
            total_tokens: u.total(),
        }
    }
}

/// A `response` object.
#[derive(Serialize)]
struct ResponseJson<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    background: bool,
    error: Option<ErrorJson<'a>>,
    incomplete_details: Option<Incomplete>,
    model: &'a str,
    output: &'a [OutputItem],
    #[serde(flatten)]
    echo: &'a Echo,
    max_tool_calls: (),
    previous_response_id: (),
    reasoning: Reasoning,
    service_tier: &'static str,
    store: bool,
    truncation: &'static str,
    usage: Option<UsageJson>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Incomplete {
    reason: &'static str,
}

/// Always `{"effort": null, "summary": null}`: no reasoning model answers here.
#[derive(Serialize)]
struct Reasoning {
    effort: (),
    summary: (),
}

/// One item of a response's `output`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutputItem {
    Message { id: String, status: &'static str, role: &'static str, content: Vec<OutputText> },
    FunctionCall { id: String, status: &'static str, call_id: String, name: String, arguments: String },
}

/// An `output_text` content part.
#[derive(Debug, Clone, Serialize)]
struct OutputText {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    annotations: [(); 0],
    logprobs: [(); 0],
}

impl OutputText {
    fn new(text: String) -> Self {
        Self { kind: "output_text", text, annotations: [], logprobs: [] }
    }
}

impl OutputItem {
    fn id(&self) -> &str {
        match self {
            OutputItem::Message { id, .. } | OutputItem::FunctionCall { id, .. } => id,
        }
    }

    fn message(id: String, status: &'static str, text: String) -> Self {
        let content = if status == "in_progress" { Vec::new() } else { vec![OutputText::new(text)] };
        OutputItem::Message { id, status, role: "assistant", content }
    }

    fn call(id: String, status: &'static str, call: &ToolCall) -> Self {
        OutputItem::FunctionCall {
            id,
            status,
            call_id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }
    }
}

/// How a response ended: its status and, when incomplete, why.
fn ending(finish: Finish) -> (&'static str, Option<Incomplete>) {
    match finish {
        Finish::Stop | Finish::ToolCalls => ("completed", None),
        Finish::Length => ("incomplete", Some(Incomplete { reason: "max_output_tokens" })),
        Finish::ContentFilter => ("incomplete", Some(Incomplete { reason: "content_filter" })),
    }
}

/// The status of the items of a response that ended with `finish`.
fn item_status(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "completed",
        Finish::Length | Finish::ContentFilter => "incomplete",
    }
}

/// The item ids of a response: `msg_…` and `fc_…` with the response's own hex.
struct ItemIds<'a>(&'a str);

impl ItemIds<'_> {
    fn new(meta: &ResponseMeta) -> ItemIds<'_> {
        ItemIds(meta.id.strip_prefix("resp_").unwrap_or(&meta.id))
    }

    fn message(&self, n: usize) -> String {
        match n {
            0 => format!("msg_{}", self.0),
            n => format!("msg_{}_{n}", self.0),
        }
    }

    fn call(&self, n: usize) -> String {
        format!("fc_{}_{n}", self.0)
    }
}

/// The `response` object of `meta` with `output`, as JSON.
fn response_json(
    meta: &ResponseMeta,
    status: &'static str,
    output: &[OutputItem],
    incomplete: Option<Incomplete>,
    error: Option<ErrorJson>,
    usage: Option<&Usage>,
) -> serde_json::Value {
    let default_echo;
    let echo = match &meta.echo {
        Some(e) => &**e,
        None => {
            default_echo = Echo::default();
            &default_echo
        }
    };
    let json = ResponseJson {
        id: &meta.id,
        object: "response",
        created_at: meta.created,
        status,
        background: false,
        error,
        incomplete_details: incomplete,
        model: &meta.model,
        output,
        echo,
        max_tool_calls: (),
        previous_response_id: (),
        reasoning: Reasoning { effort: (), summary: () },
        service_tier: "default",
        store: echo.store,
        truncation: "disabled",
        usage: usage.map(UsageJson::from),
    };
    // Our own types: serializing them cannot fail.
    serde_json::to_value(&json).unwrap_or_default()
}

/// A whole answer's output items.
fn whole_output(meta: &ResponseMeta, answer: &Whole) -> Vec<OutputItem> {
    let ids = ItemIds::new(meta);
    let status = item_status(answer.finish);
    let mut output = Vec::new();
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        output.push(OutputItem::message(ids.message(0), status, answer.text.to_owned()));
    }
    for (n, call) in answer.tool_calls.iter().enumerate() {
        output.push(OutputItem::call(ids.call(n), "completed", call));
    }
    output
}

/// A whole `response` object.
pub(super) fn response_object(meta: &ResponseMeta, answer: &Whole) -> String {
    let output = whole_output(meta, answer);
    let (status, incomplete) = ending(answer.finish);
    to_json(&response_json(meta, status, &output, incomplete, None, Some(&answer.usage)))
}

/// A whole answer's output items to keep for `item_reference`s (none unless it was asked
/// with `store`).
pub(super) fn whole_items(meta: &ResponseMeta, answer: &Whole) -> Vec<(String, String)> {
    kept(meta, &whole_output(meta, answer))
}

/// `output`'s items by id, as JSON, when the request asked for its answer to be stored.
fn kept(meta: &ResponseMeta, output: &[OutputItem]) -> Vec<(String, String)> {
    if !meta.echo.as_ref().is_none_or(|e| e.store) {
        return Vec::new();
    }
    output.iter().map(|item| (item.id().to_owned(), to_json(item))).collect()
}

/// One typed event: `{"type", "sequence_number", ...its members}`.
#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct WithResponse {
    response: serde_json::Value,
}

#[derive(Serialize)]
struct WithItem<'a> {
    output_index: usize,
    item: &'a OutputItem,
}

#[derive(Serialize)]
struct WithPart<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    part: OutputText,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    delta: &'a str,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct TextDone<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    text: &'a str,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDone<'a> {
    item_id: &'a str,
    output_index: usize,
    name: &'a str,
    arguments: &'a str,
}

/// An output item of a stream, as far as it has arrived.
enum Item {
    Message {
        id: String,
        text: String,
    },
    /// `index`: the call's index among the answer's tool-call fragments.
    Call {
        id: String,
        index: usize,
        call: ToolCall,
    },
}

/// A translated answer as Responses events.
pub struct ResponseEvents {
    meta: ResponseMeta,
    sequence: u64,
    items: Vec<Item>,
    /// The item still receiving text or arguments (an index into `items`).
    open: Option<usize>,
    messages: usize,
    calls: usize,
}

impl ResponseEvents {
    pub fn new(meta: ResponseMeta) -> Self {
        Self { meta, sequence: 0, items: Vec::new(), open: None, messages: 0, calls: 0 }
    }

    /// `event: <type>` and its data, numbered.
    fn event<T: Serialize>(&mut self, kind: &str, body: T) -> String {
        let data = to_json(&Event { kind, sequence_number: self.sequence, body });
        self.sequence += 1;
        format!("event: {kind}\ndata: {data}\n\n")
    }

    /// The items so far, in their `output` form.
    fn output(&self, status: &'static str) -> Vec<OutputItem> {
        self.items
            .iter()
            .map(|item| match item {
                Item::Message { id, text } => OutputItem::message(id.clone(), status, text.clone()),
                Item::Call { id, call, .. } => OutputItem::call(id.clone(), status, call),
            })
            .collect()
    }

    fn response_event(
        &mut self,
        kind: &str,
        status: &'static str,
        item_status: &'static str,
        incomplete: Option<Incomplete>,
        error: Option<ErrorJson>,
        usage: Option<&Usage>,
    ) -> String {
        let output = if kind == "response.created" || kind == "response.in_progress" {
            Vec::new()
        } else {
            self.output(item_status)
        };
        let response = response_json(&self.meta, status, &output, incomplete, error, usage);
        self.event(kind, WithResponse { response })
    }

    /// Opens a message item for text.
    fn open_message(&mut self) -> String {
        let mut out = self.close_open("completed");
        let id = ItemIds::new(&self.meta).message(self.messages);
        self.messages += 1;
        let at = self.items.len();
        let item = OutputItem::message(id.clone(), "in_progress", String::new());
        out.push_str(&self.event("response.output_item.added", WithItem { output_index: at, item: &item }));
        let part = WithPart { item_id: &id, output_index: at, content_index: 0, part: OutputText::new(String::new()) };
        out.push_str(&self.event("response.content_part.added", part));
        self.items.push(Item::Message { id, text: String::new() });
        self.open = Some(at);
        out
    }

    /// Opens a function_call item for a new call.
    fn open_call(&mut self, fragment: &ToolCallDelta) -> String {
        let mut out = self.close_open("completed");
        let id = ItemIds::new(&self.meta).call(self.calls);
        self.calls += 1;
        let call = ToolCall {
            id: fragment.id.clone().unwrap_or_else(|| format!("call_{id}")),
            name: fragment.name.clone().unwrap_or_default(),
            arguments: String::new(),
        };
        let at = self.items.len();
        let item = OutputItem::call(id.clone(), "in_progress", &call);
        out.push_str(&self.event("response.output_item.added", WithItem { output_index: at, item: &item }));
        self.items.push(Item::Call { id, index: fragment.index, call });
        self.open = Some(at);
        out
    }

    /// Ends the open item, if any: its `.done` events with `status`.
    fn close_open(&mut self, status: &'static str) -> String {
        let Some(at) = self.open.take() else { return String::new() };
        let mut out = String::new();
        let item = match self.items.get(at) {
            Some(Item::Message { id, text }) => {
                let (id, text) = (id.clone(), text.clone());
                let done = TextDone { item_id: &id, output_index: at, content_index: 0, text: &text, logprobs: [] };
                out.push_str(&self.event("response.output_text.done", done));
                let part = OutputText::new(text.clone());
                let part = WithPart { item_id: &id, output_index: at, content_index: 0, part };
                out.push_str(&self.event("response.content_part.done", part));
                OutputItem::message(id, status, text)
            }
            Some(Item::Call { id, call, .. }) => {
                let (id, call) = (id.clone(), call.clone());
                let done =
                    ArgumentsDone { item_id: &id, output_index: at, name: &call.name, arguments: &call.arguments };
                out.push_str(&self.event("response.function_call_arguments.done", done));
                OutputItem::call(id, status, &call)
            }
            None => return out,
        };
        out.push_str(&self.event("response.output_item.done", WithItem { output_index: at, item: &item }));
        out
    }
}

impl StreamWriter for ResponseEvents {
    fn open(&mut self) -> String {
        let mut out = self.response_event("response.created", "in_progress", "in_progress", None, None, None);
        out.push_str(&self.response_event("response.in_progress", "in_progress", "in_progress", None, None, None));
        out
    }

    fn text(&mut self, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        let mut out = match self.open.and_then(|at| self.items.get(at)) {
            Some(Item::Message { .. }) => String::new(),
            _ => self.open_message(),
        };
        let Some(at) = self.open else { return out };
        let id = match self.items.get_mut(at) {
            Some(Item::Message { id, text: so_far }) => {
                so_far.push_str(text);
                id.clone()
            }
            _ => return out,
        };
        let delta = TextDelta { item_id: &id, output_index: at, content_index: 0, delta: text, logprobs: [] };
        out.push_str(&self.event("response.output_text.delta", delta));
        out
    }

    fn tool_call(&mut self, fragment: &ToolCallDelta) -> String {
        // A fragment with an id opens a call; the others add to the call of their index.
        let found =
            self.items.iter().rposition(|item| matches!(item, Item::Call { index, .. } if *index == fragment.index));
        let (mut out, at) = match (fragment.id.is_some(), found) {
            (false, Some(at)) => (String::new(), at),
            _ => {
                let out = self.open_call(fragment);
                (out, self.items.len() - 1)
            }
        };
        if fragment.arguments.is_empty() {
            return out;
        }
        let id = match self.items.get_mut(at) {
            Some(Item::Call { id, call, .. }) => {
                call.arguments.push_str(&fragment.arguments);
                id.clone()
            }
            _ => return out,
        };
        let delta = ArgumentsDelta { item_id: &id, output_index: at, delta: &fragment.arguments };
        out.push_str(&self.event("response.function_call_arguments.delta", delta));
        out
    }

    fn close(&mut self, finish: Finish, usage: &Usage) -> String {
        // An answer with nothing in it is still one (empty) message, as a whole answer is.
        let mut out = if self.items.is_empty() { self.open_message() } else { String::new() };
        let status = item_status(finish);
        out.push_str(&self.close_open(status));
        let (response_status, incomplete) = ending(finish);
        let kind = if response_status == "completed" { "response.completed" } else { "response.incomplete" };
        out.push_str(&self.response_event(kind, response_status, status, incomplete, None, Some(usage)));
        out
    }

    fn fail(&mut self, code: &'static str) -> String {
        let error = ErrorJson { code, message: "the model's stream ended early" };
        self.response_event("response.failed", "failed", "incomplete", None, Some(error), None)
    }

    fn kept_items(&self) -> Vec<(String, String)> {
        kept(&self.meta, &self.output("completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn meta() -> ResponseMeta {
        ResponseMeta { id: "resp_ab12".into(), created: 7, model: "m".into(), prompt_estimate: 0, echo: None }
    }

    const USAGE: Usage = Usage { prompt_tokens: 3, completion_tokens: 2 };

    /// Every event of a stream: (event name, data), checking that they agree and are numbered.
    fn events(text: &str) -> Vec<(String, Value)> {
        let out: Vec<(String, Value)> = text
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (head, data) = e.split_once('\n').unwrap();
                let name = head.strip_prefix("event: ").unwrap().to_owned();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], json!(name));
                (name, data)
            })
            .collect();
        for (n, (_, data)) in out.iter().enumerate() {
            assert_eq!(data["sequence_number"], json!(n));
        }
        out
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn the_items_kept_are_the_output_items_sent_and_only_when_stored() {
        let calls = [ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{}".into() }];
        let answer = Whole { text: "hi", tool_calls: &calls, finish: Finish::ToolCalls, usage: USAGE };
        let sent: Value = serde_json::from_str(&response_object(&meta(), &answer)).unwrap();
        let kept = whole_items(&meta(), &answer);
        assert_eq!(kept.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["msg_ab12", "fc_ab12_0"]);
        let kept: Vec<Value> = kept.iter().map(|(_, item)| serde_json::from_str(item).unwrap()).collect();
        assert_eq!(Value::Array(kept), sent["output"]);
        // The stream keeps the same items under the same ids.
        let mut w = ResponseEvents::new(meta());
        let _ = [
            w.open(),
            w.text("hi"),
            w.tool_call(&ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("f".into()),
                arguments: "{}".into(),
            }),
            w.close(Finish::ToolCalls, &USAGE),
        ];
        assert_eq!(w.kept_items(), whole_items(&meta(), &answer));
        let unstored = Echo { store: false, ..Echo::default() };
        let meta = ResponseMeta { echo: Some(Arc::new(unstored)), ..meta() };
        assert!(whole_items(&meta, &answer).is_empty());
        assert_eq!(serde_json::from_str::<Value>(&response_object(&meta, &answer)).unwrap()["store"], false);
    }

    #[test]
    fn a_whole_answer_is_a_response_with_a_message_and_usage() {
        let answer = Whole { text: "hi there", tool_calls: &[], finish: Finish::Stop, usage: USAGE };
        let v: Value = serde_json::from_str(&response_object(&meta(), &answer)).unwrap();
        assert_eq!(v["id"], "resp_ab12");
        assert_eq!(v["object"], "response");
        assert_eq!(v["created_at"], 7);
        assert_eq!(v["status"], "completed");
        assert_eq!(v["model"], "m");
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["incomplete_details"], Value::Null);
        // Stored unless the request said otherwise, as OpenAI's default.
        assert_eq!(v["store"], true);
        assert_eq!(v["tools"], json!([]));
        assert_eq!(v["tool_choice"], "auto");
        assert_eq!(v["text"], json!({ "format": { "type": "text" } }));
        assert_eq!(
            v["output"],
            json!([{ "type": "message", "id": "msg_ab12", "status": "completed", "role": "assistant",
                     "content": [{ "type": "output_text", "text": "hi there", "annotations": [], "logprobs": [] }] }])
        );
        assert_eq!(
            v["usage"],
            json!({ "input_tokens": 3, "input_tokens_details": { "cached_tokens": 0 }, "output_tokens": 2,
                    "output_tokens_details": { "reasoning_tokens": 0 }, "total_tokens": 5 })
        );
    }

    #[test]
    fn a_whole_answer_of_tool_calls_has_function_call_items_and_echoes_the_request() {
        let calls = [
            ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"a\":1}".into() },
            ToolCall { id: "call_2".into(), name: "g".into(), arguments: "{}".into() },
        ];
        let echo = Echo { instructions: json!("be brief"), parallel_tool_calls: false, ..Echo::default() };
        let meta = ResponseMeta { echo: Some(Arc::new(echo)), ..meta() };
        let answer = Whole { text: "", tool_calls: &calls, finish: Finish::ToolCalls, usage: USAGE };
        let v: Value = serde_json::from_str(&response_object(&meta, &answer)).unwrap();
        assert_eq!(v["status"], "completed");
        assert_eq!(v["instructions"], "be brief");
        assert_eq!(v["parallel_tool_calls"], false);
        assert_eq!(
            v["output"],
            json!([
                { "type": "function_call", "id": "fc_ab12_0", "status": "completed", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}" },
                { "type": "function_call", "id": "fc_ab12_1", "status": "completed", "call_id": "call_2", "name": "g", "arguments": "{}" }
            ])
        );
    }

    #[test]
    fn a_length_finish_is_an_incomplete_response() {
        let answer = Whole { text: "cut", tool_calls: &[], finish: Finish::Length, usage: USAGE };
        let v: Value = serde_json::from_str(&response_object(&meta(), &answer)).unwrap();
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"], json!({ "reason": "max_output_tokens" }));
        assert_eq!(v["output"][0]["status"], "incomplete");
    }

    #[test]
    fn a_text_stream_is_the_typed_event_sequence() {
        let mut w = ResponseEvents::new(meta());
        let text = [w.open(), w.text("Hel"), w.text(""), w.text("lo"), w.close(Finish::Stop, &USAGE)].concat();
        let ev = events(&text);
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let created = &ev[0].1["response"];
        assert_eq!((created["status"].clone(), created["output"].clone()), (json!("in_progress"), json!([])));
        assert_eq!(created["usage"], Value::Null);
        assert_eq!(
            ev[2].1["item"],
            json!({ "type": "message", "id": "msg_ab12", "status": "in_progress", "role": "assistant", "content": [] })
        );
        assert_eq!(ev[3].1["part"], json!({ "type": "output_text", "text": "", "annotations": [], "logprobs": [] }));
        assert_eq!(
            ev[4].1,
            json!({ "type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_ab12",
                    "output_index": 0, "content_index": 0, "delta": "Hel", "logprobs": [] })
        );
        assert_eq!(ev[6].1["text"], "Hello");
        assert_eq!(ev[7].1["part"]["text"], "Hello");
        assert_eq!(ev[8].1["item"]["status"], "completed");
        assert_eq!(ev[8].1["item"]["content"][0]["text"], "Hello");
        let done = &ev[9].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"], json!([ev[8].1["item"]]));
        assert_eq!(done["usage"]["total_tokens"], 5);
    }

    #[test]
    fn tool_call_fragments_are_function_call_items_with_argument_deltas() {
        let mut w = ResponseEvents::new(meta());
        let first = ToolCallDelta {
            index: 0,
            id: Some("call_9".into()),
            name: Some("get_weather".into()),
            arguments: String::new(),
        };
        let more = |a: &str| ToolCallDelta { index: 0, id: None, name: None, arguments: a.into() };
        let second =
            ToolCallDelta { index: 1, id: Some("call_10".into()), name: Some("g".into()), arguments: "{}".into() };
        let text = [
            w.open(),
            w.text("Checking."),
            w.tool_call(&first),
            w.tool_call(&more("{\"city\":")),
            w.tool_call(&more("\"Oslo\"}")),
            w.tool_call(&second),
            w.close(Finish::ToolCalls, &USAGE),
        ]
        .concat();
        let ev = events(&text);
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(
            ev[8].1["item"],
            json!({ "type": "function_call", "id": "fc_ab12_0", "status": "in_progress", "call_id": "call_9",
                    "name": "get_weather", "arguments": "" })
        );
        assert_eq!(ev[8].1["output_index"], 1);
        assert_eq!(
            ev[9].1,
            json!({ "type": "response.function_call_arguments.delta", "sequence_number": 9, "item_id": "fc_ab12_0",
                    "output_index": 1, "delta": "{\"city\":" })
        );
        assert_eq!(ev[11].1["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(ev[11].1["name"], "get_weather");
        assert_eq!(ev[12].1["item"]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(ev[12].1["item"]["status"], "completed");
        let output = &ev[17].1["response"]["output"];
        assert_eq!(output.as_array().unwrap().len(), 3);
        assert_eq!(output[2]["call_id"], "call_10");
        assert_eq!(output[2]["id"], "fc_ab12_1");
    }

    #[test]
    fn a_stream_cut_by_the_output_cap_ends_incomplete_and_an_empty_one_has_an_empty_message() {
        let mut w = ResponseEvents::new(meta());
        let ev = events(&[w.open(), w.text("a"), w.close(Finish::Length, &USAGE)].concat());
        let (name, last) = ev.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(last["response"]["incomplete_details"], json!({ "reason": "max_output_tokens" }));
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");

        let mut w = ResponseEvents::new(meta());
        let ev = events(&[w.open(), w.close(Finish::Stop, &USAGE)].concat());
        assert_eq!(ev.len(), 8);
        assert_eq!(ev[7].1["response"]["output"][0]["content"][0]["text"], "");
    }

    #[test]
    fn a_broken_stream_ends_with_response_failed() {
        let mut w = ResponseEvents::new(meta());
        let ev = events(&[w.open(), w.text("par"), w.fail("upstream_timeout")].concat());
        let (name, last) = ev.last().unwrap();
        assert_eq!(name, "response.failed");
        assert_eq!(last["response"]["status"], "failed");
        assert_eq!(
            last["response"]["error"],
            json!({ "code": "upstream_timeout", "message": "the model's stream ended early" })
        );
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], "par");
        // No top-level `error` member: SDKs would take the event itself for an error body.
        assert!(last.get("error").is_none());
    }
}
