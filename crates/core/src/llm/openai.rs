//! The OpenAI Chat Completions wire format (and compatible APIs): request body, stream chunks
//! and `chat.completion` answers.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::provider::{ChatRequest, Sink, UpstreamRequest};
use super::sse::SseEvent;
use super::{error_text, json_object, loose_text, to_json, Counts};
use super::{ChatMessage, Completion, Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice, ToolDef};

/// A Chat Completions request body.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: Vec<Tool<'a>>,
    /// Sent only with tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireChoice<'a>>,
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

/// A message: `{"role", "content"}`, an assistant's with its `tool_calls` (and `null` content
/// when it has no text), a tool's result with the `tool_call_id` it answers.
#[derive(Serialize)]
struct Message<'a> {
    role: Role,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tool_calls: Vec<Call<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

impl<'a> From<&'a ChatMessage> for Message<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        let tool_calls: Vec<Call> = m.tool_calls.iter().map(Call::from).collect();
        let content = (tool_calls.is_empty() || !m.content.is_empty()).then_some(m.content.as_str());
        let tool_call_id = m.tool_call_id.as_deref().filter(|_| m.role == Role::Tool);
        Message { role: m.role, content, tool_calls, tool_call_id }
    }
}

/// An assistant's tool call: `{"id", "type": "function", "function": {"name", "arguments"}}`,
/// the arguments as the model sent them.
#[derive(Serialize)]
struct Call<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl<'a> From<&'a ToolCall> for Call<'a> {
    fn from(call: &'a ToolCall) -> Self {
        Call { id: &call.id, kind: "function", function: Function { name: &call.name, arguments: &call.arguments } }
    }
}

/// A tool offered: `{"type": "function", "function": {"name", "description", "parameters"}}`.
#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a RawValue,
}

impl<'a> From<&ToolDef<'a>> for Tool<'a> {
    fn from(def: &ToolDef<'a>) -> Self {
        let function = ToolFunction { name: def.name, description: def.description, parameters: def.parameters };
        Tool { kind: "function", function }
    }
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or
/// `{"type": "function", "function": {"name": ..}}`.
#[derive(Serialize)]
#[serde(untagged)]
enum WireChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

impl<'a> From<ToolChoice<'a>> for WireChoice<'a> {
    fn from(choice: ToolChoice<'a>) -> Self {
        match choice {
            ToolChoice::Auto => WireChoice::Mode("auto"),
            ToolChoice::None => WireChoice::Mode("none"),
            ToolChoice::Required => WireChoice::Mode("required"),
            ToolChoice::Tool(name) => WireChoice::Named { kind: "function", function: Named { name } },
        }
    }
}

/// `POST {base}/chat/completions`, for base URLs that end in `/v1`.
pub(super) fn build(api_key: Option<&str>, req: &ChatRequest) -> UpstreamRequest {
    let body = Body {
        model: req.model,
        messages: req.messages.iter().map(Message::from).collect(),
        tools: req.tools.iter().map(Tool::from).collect(),
        // Sent whenever tools are (OpenAI refuses it without them); `auto` explicitly, so an
        // upstream never defaults to forcing a call.
        tool_choice: (!req.tools.is_empty()).then(|| WireChoice::from(req.tool_choice)),
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

/// A delta or a whole message: the answer text, the tool calls, and the output that is billed
/// without being answer text: refusals, reasoning (`reasoning_content` of DeepSeek-style APIs,
/// `reasoning` of others), read as plain JSON values (a derived struct per nesting level would
/// cost the wasm more than walking them).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Output {
    content: Option<String>,
    refusal: Option<Value>,
    reasoning_content: Option<Value>,
    reasoning: Option<Value>,
    /// `[{"index", "id", "function": {"name", "arguments"}}]`, each member but `index` only in
    /// the fragments that carry it.
    tool_calls: Option<Value>,
    /// The legacy single call: `{"name", "arguments"}`.
    function_call: Option<Value>,
}

impl Output {
    /// The tool calls' fragments, in order; an entry without an `index` is taken to be at its
    /// position in the list, and one with nothing in it (no id, name or arguments) is left out.
    fn tool_call_deltas(&mut self) -> Vec<ToolCallDelta> {
        let Some(Value::Array(calls)) = self.tool_calls.take() else { return Vec::new() };
        let mut deltas = Vec::new();
        for (position, mut call) in calls.into_iter().enumerate() {
            let index = call.get("index").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok());
            let id = call.get_mut("id").map(Value::take).map(loose_text).filter(|t| !t.is_empty());
            let mut function = call.get_mut("function").map(Value::take).unwrap_or_default();
            let name = function.get_mut("name").map(Value::take).map(loose_text).filter(|t| !t.is_empty());
            let arguments = function.get_mut("arguments").map(Value::take).map(loose_text).unwrap_or_default();
            if id.is_some() || name.is_some() || !arguments.is_empty() {
                deltas.push(ToolCallDelta { index: index.unwrap_or(position), id, name, arguments });
            }
        }
        deltas
    }

    /// The other output's pieces, as text, in the order named above (empty ones left out);
    /// a legacy `function_call` (never asked for) is other output too.
    fn other_pieces(self) -> Vec<String> {
        let mut pieces = vec![self.refusal, self.reasoning_content, self.reasoning];
        if let Some(mut function) = self.function_call {
            pieces.push(function.get_mut("name").map(Value::take));
            pieces.push(function.get_mut("arguments").map(Value::take));
        }
        pieces.into_iter().flatten().map(loose_text).filter(|t| !t.is_empty()).collect()
    }
}

/// One `data:` event: a `chat.completion.chunk`, an `{"error": ..}` or `[DONE]`.
/// Role-only deltas add nothing; each tool call fragment is a [`StreamEvent::ToolCall`];
/// refusals and reasoning are other output.
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
            for call in delta.tool_call_deltas() {
                sink.push(StreamEvent::ToolCall(call));
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
    let calls = message.tool_call_deltas();
    let call_chars = calls.iter().flat_map(|c| c.name.iter().chain([&c.arguments]).map(|t| t.chars().count()));
    let other_chars = message.other_pieces().iter().map(|p| p.chars().count()).chain(call_chars).sum::<usize>();
    let tool_calls = calls
        .into_iter()
        .map(|c| ToolCall { id: c.id.unwrap_or_default(), name: c.name.unwrap_or_default(), arguments: c.arguments })
        .collect();
    Ok(Completion {
        text,
        tool_calls,
        other_output_chars: other_chars as u64,
        usage: body.usage.as_ref().map(Counts::usage),
        finish_reason: choice.finish_reason,
    })
}

#[cfg(test)]
mod tests {
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

    fn schema() -> Box<RawValue> {
        RawValue::from_string(r#"{"type":"object","required":["title"]}"#.into()).unwrap()
    }

    /// A tool turn: the user's question, the assistant's two calls (the second with arguments
    /// that are not JSON), their results, and the final answer.
    fn tool_turn() -> Vec<ChatMessage> {
        let calls = vec![
            ToolCall { id: "call_1".into(), name: "add_task".into(), arguments: r#"{"title":"milk"}"#.into() },
            ToolCall { id: "call_2".into(), name: "recall".into(), arguments: "{not json".into() },
        ];
        vec![
            ChatMessage::new(Role::User, "remember milk"),
            ChatMessage::assistant_calls("", calls),
            ChatMessage::tool_result("call_1", r#"{"task_id":"tsk_1"}"#),
            ChatMessage::tool_result("call_2", "arguments are not valid JSON"),
            ChatMessage::assistant_calls("Done.", Vec::new()),
        ]
    }

    #[test]
    fn tools_assistant_calls_and_tool_results_are_sent_in_the_chat_completions_shape() {
        let messages = tool_turn();
        let schema = schema();
        let tools = [ToolDef { name: "add_task", description: "Add a \"task\".", parameters: &schema }];
        let req = ChatRequest {
            model: "m",
            messages: &messages,
            max_tokens: None,
            temperature: None,
            stream: false,
            tools: &tools,
            tool_choice: ToolChoice::Auto,
        };
        assert_eq!(
            build(None, &req).body,
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"remember milk"},"#,
                r#"{"role":"assistant","content":null,"tool_calls":["#,
                r#"{"id":"call_1","type":"function","function":{"name":"add_task","arguments":"{\"title\":\"milk\"}"}},"#,
                r#"{"id":"call_2","type":"function","function":{"name":"recall","arguments":"{not json"}}]},"#,
                r#"{"role":"tool","content":"{\"task_id\":\"tsk_1\"}","tool_call_id":"call_1"},"#,
                r#"{"role":"tool","content":"arguments are not valid JSON","tool_call_id":"call_2"},"#,
                r#"{"role":"assistant","content":"Done."}],"#,
                r#""tools":[{"type":"function","function":{"name":"add_task","description":"Add a \"task\".","#,
                r#""parameters":{"type":"object","required":["title"]}}}],"tool_choice":"auto","stream":false}"#
            )
        );
        let last_step = ChatRequest { tool_choice: ToolChoice::None, ..req };
        assert!(build(None, &last_step)
            .body
            .ends_with(r#""required":["title"]}}}],"tool_choice":"none","stream":false}"#));
        let required = ChatRequest { tool_choice: ToolChoice::Required, ..req };
        assert!(build(None, &required).body.ends_with(r#"}}}],"tool_choice":"required","stream":false}"#));
        let named = ChatRequest { tool_choice: ToolChoice::Tool("add_task"), ..req };
        assert!(build(None, &named)
            .body
            .ends_with(r#"}}}],"tool_choice":{"type":"function","function":{"name":"add_task"}},"stream":false}"#));
    }

    #[test]
    fn an_assistant_message_with_text_and_calls_keeps_its_text_and_no_tools_sends_no_tool_members() {
        let call = ToolCall { id: "c".into(), name: "recall".into(), arguments: String::new() };
        let messages = [ChatMessage::assistant_calls("Let me look.", vec![call])];
        let req = ChatRequest {
            model: "m",
            messages: &messages,
            max_tokens: None,
            temperature: None,
            stream: false,
            tools: &[],
            tool_choice: ToolChoice::None,
        };
        assert_eq!(
            build(None, &req).body,
            r#"{"model":"m","messages":[{"role":"assistant","content":"Let me look.","tool_calls":[{"id":"c","type":"function","function":{"name":"recall","arguments":""}}]}],"stream":false}"#
        );
    }
}
