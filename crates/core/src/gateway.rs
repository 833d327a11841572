//! The OpenAI-compatible gateway: request validation (OpenAI's fields checked, the rest passed
//! through untouched), OpenAI error bodies, the response-cache key and the model list. The
//! answers written for the client when they do not pass through are [`crate::answer`]'s.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::answer::Finish;
use crate::llm::context::{estimate_audio, estimate_chars, estimate_messages, IMAGE_PART_TOKENS};
use crate::llm::provider::{Provider, UpstreamRequest};
use crate::llm::routing::{embedding_only, Capabilities, Kind, ModelRoute};
use crate::llm::{to_json, ChatMessage, Completion, Role, StreamEvent, ToolCall, ToolChoice, ToolDef};
use crate::ApiError;

/// An error in OpenAI's shape, so SDKs raise the class that matches the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl OpenAiError {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.to_string()),
            code: None,
        }
    }

    pub fn model_not_found(model: &str) -> Self {
        Self {
            status: 404,
            message: format!("The model `{}` does not exist or you do not have access to it.", truncate(model, 100)),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> String {
        let error =
            ErrorDetail { message: &self.message, kind: self.kind, param: self.param.as_deref(), code: self.code };
        to_json(&ErrorBody { error })
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// OpenAI's error object: `param` and `code` are `null` when unset, never left out.
#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl From<&ApiError> for OpenAiError {
    /// Our errors on `/v1/*`, in OpenAI's shape: validation failures become 400 (OpenAI never
    /// answers 422), authentication failures `invalid_api_key`.
    fn from(err: &ApiError) -> Self {
        let (status, kind, code) = match err.status {
            401 => (401, "invalid_request_error", Some("invalid_api_key")),
            403 => (403, "invalid_request_error", Some(err.code)),
            404 => (404, "invalid_request_error", Some(err.code)),
            422 | 400 => (400, "invalid_request_error", Some(err.code)),
            413 | 415 | 405 => (err.status, "invalid_request_error", Some(err.code)),
            429 => (429, "requests", Some("rate_limit_exceeded")),
            s if s >= 500 => (s, "server_error", Some(err.code)),
            s => (s, "invalid_request_error", Some(err.code)),
        };
        Self { status, message: err.message.clone(), kind, param: None, code }
    }
}

/// A validated chat-completions request.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    /// The body as sent, for pass-through to OpenAI-compatible upstreams.
    pub body: RawObject,
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    /// Temperature 0 or a seed: eligible for the response cache.
    pub deterministic: bool,
    pub has_tools: bool,
    /// The tools offered (empty when none), kept for translation.
    pub tools: Vec<GatewayTool>,
    /// `tool_choice` as asked.
    pub tool_choice: AskedChoice,
    /// JSON mode (`response_format` `json_object` or `json_schema`), kept for translation.
    pub json_mode: Option<JsonMode>,
    /// A message has an image part (which only a model with vision takes).
    pub has_images: bool,
    /// The output cap asked for: `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u32>,
    /// `max_tokens` and `max_completion_tokens` as sent, for the admission rules.
    pub max_tokens_field: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    /// Choices asked for (`n`).
    pub n: Option<u32>,
    /// As the client wrote it (a JSON number).
    pub temperature: Option<Box<RawValue>>,
    /// The messages (text, tool calls and tool results), for translation to other providers
    /// and token estimates.
    pub messages: Vec<ChatMessage>,
    /// Estimated tokens of the billed prompt besides the messages' text: image and audio
    /// parts, assistant tool calls, tool definitions, a `response_format` schema.
    prompt_other_tokens: u64,
}

/// A tool the client offered: `{"type": "function", "function": {"name", "description",
/// "parameters"}}`, its schema as written.
#[derive(Debug, Clone)]
pub struct GatewayTool {
    pub name: String,
    pub description: String,
    /// The arguments' JSON schema (an object; `{"type":"object","properties":{}}` when the
    /// client gave none, a function without arguments).
    pub parameters: Box<RawValue>,
}

/// `tool_choice` as the client asked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AskedChoice {
    #[default]
    Auto,
    None,
    Required,
    /// `{"type": "function", "function": {"name": ..}}`.
    Function(String),
}

/// JSON mode: the answer must be a JSON object, of `schema` for `json_schema`. On a route
/// without native JSON mode it is asked for as a forced tool of this name and schema, whose
/// input is the answer.
#[derive(Debug, Clone)]
pub struct JsonMode {
    /// `json_schema.name`, or [`JSON_OBJECT_TOOL`] for `json_object`.
    pub name: String,
    pub description: String,
    /// `json_schema.schema` as written, or `{"type":"object"}` for `json_object`.
    pub schema: Box<RawValue>,
}

/// The forced tool's name for `response_format: {"type": "json_object"}`.
pub const JSON_OBJECT_TOOL: &str = "json_object";

/// The forced tool's description when the schema has none.
const JSON_TOOL_DESCRIPTION: &str = "Give your answer as this tool's input: a JSON object matching its schema.";

impl GatewayRequest {
    /// The tools a translated route is offered: the client's, or JSON mode's forced tool
    /// (a request never has both on a translated route: see [`translation_refused`]).
    pub fn tool_defs(&self) -> Vec<ToolDef<'_>> {
        if let Some(json) = &self.json_mode {
            return vec![ToolDef { name: &json.name, description: &json.description, parameters: &json.schema }];
        }
        self.tools
            .iter()
            .map(|t| ToolDef { name: &t.name, description: &t.description, parameters: &t.parameters })
            .collect()
    }

    /// The choice a translated route is sent with [`GatewayRequest::tool_defs`]: JSON mode
    /// forces its tool.
    pub fn translated_choice(&self) -> ToolChoice<'_> {
        if let Some(json) = &self.json_mode {
            return ToolChoice::Tool(&json.name);
        }
        match &self.tool_choice {
            AskedChoice::Auto => ToolChoice::Auto,
            AskedChoice::None => ToolChoice::None,
            AskedChoice::Required => ToolChoice::Required,
            AskedChoice::Function(name) => ToolChoice::Tool(name),
        }
    }

    /// Whether the answer is JSON mode's forced tool call, to be given to the client as text.
    pub fn json_via_tool(&self, provider: Provider) -> bool {
        self.json_mode.is_some() && provider != Provider::OpenAi
    }

    /// The prompt's estimated tokens, for admission and for an upstream that reports no usage:
    /// every message's text and framing ([`estimate_messages`]), each image part at
    /// [`IMAGE_PART_TOKENS`], each audio part by its data ([`estimate_audio`]), other parts
    /// (files, ...) and assistant tool calls by their JSON text, and the tool definitions and
    /// a `json_schema` response format by their JSON text as sent (4 characters a token).
    pub fn prompt_estimate(&self) -> u64 {
        estimate_messages(&self.messages) + self.prompt_other_tokens
    }
}

/// A JSON object whose members keep the client's bytes: each name and value as its raw text
/// (number text, string escapes and whitespace inside a value untouched), in the order sent.
/// A name given twice keeps its first place and its last value, so that no upstream sees a
/// member twice.
#[derive(Debug, Clone, Default)]
pub struct RawObject {
    /// (name as written, quotes included; value as written).
    members: Vec<(Box<RawValue>, Box<RawValue>)>,
    /// Each decoded name's place in `members`, by name.
    places: BTreeMap<String, usize>,
}

impl RawObject {
    /// The value of member `name` as written.
    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.places.get(name).and_then(|&i| self.members.get(i)).map(|(_, value)| &**value)
    }

    /// Member `name` read as a JSON value to be checked, in bounded memory ([`slim`]: an
    /// array's first items, no object members); `None` when absent.
    pub(crate) fn checked(&self, name: &str) -> Result<Option<Value>, OpenAiError> {
        self.checked_keeping(name, &[])
    }

    /// [`RawObject::checked`], keeping of an object its members named in `keep` (at most 4).
    pub(crate) fn checked_keeping(&self, name: &str, keep: &[&str]) -> Result<Option<Value>, OpenAiError> {
        Ok(self.get(name).map(|raw| slim(raw.get(), keep)))
    }

    /// Reads every member whole, the way serde_json reads a value it keeps: raw values are
    /// read without its nesting limit and let escaped lone surrogates through, and nothing a
    /// value would refuse may reach an upstream. The limit counts from each member, so a body
    /// may nest 128 levels with its own object.
    pub(crate) fn check(&self) -> Result<(), OpenAiError> {
        for (name, value) in &self.members {
            serde_json::from_slice::<Checked>(name.get().as_bytes()).map_err(unreadable)?;
            serde_json::from_slice::<Checked>(value.get().as_bytes()).map_err(unreadable)?;
        }
        Ok(())
    }

    /// The members sorted by decoded name: (name, value as written).
    fn by_name(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.places.iter().filter_map(|(name, &i)| Some((name.as_str(), &*self.members.get(i)?.1)))
    }

    /// The object as JSON text: every member as it was written, in its place, except the
    /// members named in `set`, whose values are replaced (and which are appended, in `set`'s
    /// order, when absent).
    ///
    /// Written piece by piece because serde_json serializes a member name only from a decoded
    /// string, which would re-escape names the client wrote with escapes.
    pub(crate) fn write_with(&self, set: &[(&str, &RawValue)]) -> String {
        let replaced = |i: usize| set.iter().find(|(name, _)| self.places.get(*name) == Some(&i)).map(|(_, v)| *v);
        let size = self.members.iter().map(|(n, v)| n.get().len() + v.get().len() + 2).sum::<usize>();
        let extra = set.iter().map(|(n, v)| n.len() + v.get().len() + 4).sum::<usize>();
        let mut out = String::with_capacity(size + extra + 2);
        out.push('{');
        for (i, (member, text)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(member.get());
            out.push(':');
            out.push_str(replaced(i).unwrap_or(text).get());
        }
        for (name, value) in set.iter().filter(|(name, _)| !self.places.contains_key(*name)) {
            if out.len() > 1 {
                out.push(',');
            }
            // A name of ours: serializing a string cannot fail.
            out.push_str(&serde_json::to_string(name).unwrap_or_default());
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> Visitor<'de> for Members {
            type Value = RawObject;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut object = RawObject::default();
                while let Some((name, value)) = map.next_entry::<Box<RawValue>, Box<RawValue>>()? {
                    let text = name.get();
                    // A member name is a JSON string: its text is quoted.
                    let quoted = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
                    // A name that does not decode is refused by `check`.
                    let decoded = match quoted.contains('\\') {
                        true => serde_json::from_slice::<String>(text.as_bytes()).unwrap_or_else(|_| quoted.to_owned()),
                        false => quoted.to_owned(),
                    };
                    match object.places.get(&decoded).and_then(|&i| object.members.get_mut(i)) {
                        Some((_, old)) => *old = value,
                        None => {
                            object.places.insert(decoded, object.members.len());
                            object.members.push((name, value));
                        }
                    }
                }
                Ok(object)
            }
        }

        deserializer.deserialize_map(Members)
    }
}

/// Why `route` cannot take `req`, as the 400 that names the parameter: tools, JSON mode or
/// image parts on a model without the capability, or tools together with JSON mode on a translated
/// route (JSON mode is itself a forced tool there). `None` when it can.
pub fn translation_refused(req: &GatewayRequest, route: &ModelRoute) -> Option<OpenAiError> {
    if route.kind == Kind::Embedding {
        return Some(OpenAiError::invalid("model", embedding_only(&route.name)));
    }
    let caps = route.capabilities;
    let name = truncate(&route.name, 100);
    if req.has_tools && !caps.tools {
        return Some(OpenAiError::invalid("tools", format!("model {name} does not support tools")));
    }
    if req.json_mode.is_some() && !caps.json_mode {
        let message = format!("model {name} does not support response_format json_object or json_schema");
        return Some(OpenAiError::invalid("response_format", message));
    }
    if req.has_images && !caps.vision {
        return Some(OpenAiError::invalid("messages", format!("model {name} does not support image input")));
    }
    if req.has_tools && req.json_mode.is_some() && route.provider != Provider::OpenAi {
        let message = format!(
            "model {name} takes tools or a JSON response_format, not both: JSON mode is answered as a forced tool call on it"
        );
        return Some(OpenAiError::invalid("response_format", message));
    }
    None
}

/// A whole answer to JSON mode asked as a forced tool: the tool's input becomes the answer's
/// text (any text of the model's own is left out: the client asked for JSON only) and the
/// call's finish a plain stop. An answer without the call (cut short) stays as it is.
pub fn json_mode_answer(mut decoded: Completion, finish: Finish) -> (Completion, Finish) {
    if decoded.tool_calls.is_empty() {
        return (decoded, finish);
    }
    decoded.text = decoded.tool_calls.drain(..).map(|call| call.arguments).collect();
    let finish = if finish == Finish::ToolCalls { Finish::Stop } else { finish };
    (decoded, finish)
}

/// A streamed event of an answer to JSON mode asked as a forced tool: the tool's input
/// fragments become answer text, its name (on the fragment that opens it) billed output only.
/// The finish is mapped by the caller, as for [`json_mode_answer`].
pub fn json_mode_event(event: StreamEvent) -> StreamEvent {
    match event {
        StreamEvent::ToolCall(f) if f.arguments.is_empty() => StreamEvent::OtherOutput(f.name.unwrap_or_default()),
        StreamEvent::ToolCall(f) => StreamEvent::Delta(f.arguments),
        event => event,
    }
}

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool", "function"];

/// Parses and validates a `POST /v1/chat/completions` body.
///
/// Only the members checked here are read (each from its own text); the body itself is kept
/// as sent for [`passthrough_body`].
pub fn parse_request(bytes: &[u8]) -> Result<GatewayRequest, OpenAiError> {
    let body: RawObject = serde_json::from_slice(bytes).map_err(unreadable)?;
    body.check()?;
    let model = match body.checked("model")? {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err(OpenAiError::invalid("model", "you must provide a model parameter")),
    };
    let (messages, parts) = parse_messages(body.get("messages"))?;
    let mut prompt_other_tokens = parts.other_tokens;
    let number = |name: &str, (min, max): (f64, f64), bounds: &str| -> Result<Option<f64>, OpenAiError> {
        match body.checked(name)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(OpenAiError::invalid(name, format!("{name} must be between {bounds}"))),
            },
            Some(_) => Err(OpenAiError::invalid(name, format!("{name} must be a number"))),
        }
    };
    let temperature = number("temperature", (0.0, 2.0), "0 and 2")?;
    number("top_p", (0.0, 1.0), "0 and 1")?;
    number("presence_penalty", (-2.0, 2.0), "-2 and 2")?;
    number("frequency_penalty", (-2.0, 2.0), "-2 and 2")?;
    let positive_int = |name: &str| -> Result<Option<u32>, OpenAiError> {
        match body.checked(name)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v >= 1 => Ok(Some(v.min(u64::from(u32::MAX)) as u32)),
                _ => Err(OpenAiError::invalid(name, format!("{name} must be a positive integer"))),
            },
            Some(_) => Err(OpenAiError::invalid(name, format!("{name} must be a positive integer"))),
        }
    };
    let max_completion_tokens = positive_int("max_completion_tokens")?;
    let max_tokens_field = positive_int("max_tokens")?;
    let max_tokens = max_completion_tokens.or(max_tokens_field);
    let n = positive_int("n")?;
    let stream = match body.checked("stream")? {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(OpenAiError::invalid("stream", "stream must be a boolean")),
    };
    let include_usage = match body.checked_keeping("stream_options", &["include_usage"])? {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) if stream => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(OpenAiError::invalid("stream_options.include_usage", "include_usage must be a boolean"))
            }
        },
        Some(Value::Object(_)) => {
            return Err(OpenAiError::invalid("stream_options", "stream_options is only allowed when stream is true"))
        }
        Some(_) => return Err(OpenAiError::invalid("stream_options", "stream_options must be an object")),
    };
    match body.checked("stop")? {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => {}
        Some(_) => return Err(OpenAiError::invalid("stop", "stop must be a string or up to 4 strings")),
    }
    let seed = match body.checked("seed")? {
        None | Some(Value::Null) => None,
        // Written as a whole number that fits an i64 or a u64.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(()),
        Some(_) => return Err(OpenAiError::invalid("seed", "seed must be an integer")),
    };
    if !matches!(body.checked("user")?, None | Some(Value::Null) | Some(Value::String(_))) {
        return Err(OpenAiError::invalid("user", "user must be a string"));
    }
    let (tools, tool_tokens) = read_tools(&body)?;
    let tool_choice = read_tool_choice(&body, &tools)?;
    let has_tools = !tools.is_empty();
    prompt_other_tokens += tool_tokens;
    let (json_mode, schema_tokens) = read_response_format(body.get("response_format"))?;
    prompt_other_tokens += schema_tokens;
    let deterministic = temperature == Some(0.0) || seed.is_some();
    let temperature = temperature.and(body.get("temperature")).map(RawValue::to_owned);
    Ok(GatewayRequest {
        body,
        model,
        stream,
        include_usage,
        deterministic,
        has_tools,
        tools,
        tool_choice,
        json_mode,
        max_tokens,
        max_tokens_field,
        max_completion_tokens,
        n,
        temperature,
        messages,
        has_images: parts.images > 0,
        prompt_other_tokens,
    })
}

/// Any JSON value, read whole only to be checked the way serde_json checks a value it keeps
/// (nesting limit, string escapes), keeping nothing.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_any` is where serde_json counts nesting; `IgnoredAny` skips the count.
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// The 400 for a body that is not JSON, or not an object.
pub(crate) fn unreadable(e: serde_json::Error) -> OpenAiError {
    let message = if e.is_data() {
        "The request body must be a JSON object.".to_owned()
    } else if e.to_string().starts_with("recursion limit exceeded") {
        format!("We could not parse the JSON body of your request: it is nested too deeply ({e})")
    } else {
        format!("We could not parse the JSON body of your request: {e}")
    };
    OpenAiError { param: None, ..OpenAiError::invalid("", message) }
}

/// The messages' text (for translation and estimates) and the estimated tokens of the rest
/// of what is billed in them, read message by message from the raw text: nothing is kept of a
/// message but its text, so memory stays within the body's size.
fn parse_messages(raw: Option<&RawValue>) -> Result<(Vec<ChatMessage>, Parts), OpenAiError> {
    let mut out = Vec::new();
    let mut parts = Parts::default();
    let read = for_each_element(raw.map_or("", RawValue::get), |i, item| {
        let message = read_message(i, item, &mut parts)?;
        out.push(message);
        Ok(())
    })?;
    match read {
        None => Err(OpenAiError::invalid("messages", "messages must be an array of message objects")),
        Some(0) => Err(OpenAiError::invalid("messages", "messages must contain at least one message")),
        Some(_) => Ok((out, parts)),
    }
}

/// What the messages hold besides what is kept of them: the estimated tokens of their other
/// billed parts, and how many image parts there are.
#[derive(Default)]
struct Parts {
    other_tokens: u64,
    images: u32,
}

/// Message `i`: its role and text, and the estimated tokens of its other billed parts.
fn read_message(i: usize, item: &RawValue, parts: &mut Parts) -> Result<ChatMessage, OpenAiError> {
    let param = |field: &str| format!("messages[{i}].{field}");
    let names = ["role", "content", "tool_call_id", "tool_calls", "function_call", "name"];
    let Some([role, content, tool_call_id, tool_calls, function_call, name]) = members(item.get(), names) else {
        return Err(OpenAiError::invalid(&format!("messages[{i}]"), "each message must be an object"));
    };
    let role = match string(role) {
        Some(r) if ROLES.contains(&&*r) => r,
        _ => return Err(OpenAiError::invalid(&param("role"), format!("role must be one of {}", ROLES.join(", ")))),
    };
    let text = match content.map(|c| (first_byte(c.get()), c)) {
        Some((Some(b'"'), c)) => string(Some(c)).unwrap_or_default(),
        Some((Some(b'['), c)) => read_parts(&param("content"), c, parts)?,
        None | Some((Some(b'n'), _)) if role == "assistant" => String::new(),
        _ => {
            return Err(OpenAiError::invalid(
                &param("content"),
                "content must be a string or an array of content parts",
            ))
        }
    };
    let tool_call_id = match role.as_str() {
        "tool" => match string(tool_call_id) {
            Some(id) => Some(id),
            None => return Err(OpenAiError::invalid(&param("tool_call_id"), "tool messages need a tool_call_id")),
        },
        _ => None,
    };
    // An assistant's tool calls are prompt the model reads again, counted by their JSON text
    // (the message's estimate counts the kept calls' names and arguments: the rest is added
    // here), as are a legacy call and a name.
    let mut other_tokens = tool_calls.map_or(0, json_text_tokens);
    let tool_calls = match (role.as_str(), tool_calls) {
        ("assistant", Some(calls)) => {
            let calls = read_tool_calls(&param("tool_calls"), calls)?;
            let kept = calls.iter().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>();
            other_tokens = other_tokens.saturating_sub(estimate_chars(kept as u64));
            calls
        }
        _ => Vec::new(),
    };
    other_tokens += [function_call, name].into_iter().flatten().map(json_text_tokens).sum::<u64>();
    let role = match &*role {
        "system" | "developer" => Role::System,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => Role::User,
    };
    parts.other_tokens += other_tokens;
    Ok(ChatMessage { role, content: text, tool_calls, tool_call_id })
}

/// An assistant message's `tool_calls`: each `{"id", "type": "function", "function": {"name",
/// "arguments"}}` (arguments a string, as the model wrote them); `null` is none.
fn read_tool_calls(param: &str, raw: &RawValue) -> Result<Vec<ToolCall>, OpenAiError> {
    if first_byte(raw.get()) == Some(b'n') {
        return Ok(Vec::new());
    }
    let mut calls = Vec::new();
    let count = for_each_element(raw.get(), |j, call| {
        let refused = || {
            OpenAiError::invalid(
                &format!("{param}[{j}]"),
                "each tool call must be {\"id\":...,\"type\":\"function\",\"function\":{\"name\":...,\"arguments\":\"...\"}}",
            )
        };
        let [id, function] = members(call.get(), ["id", "function"]).ok_or_else(refused)?;
        let [name, arguments] = function.and_then(|f| members(f.get(), ["name", "arguments"])).ok_or_else(refused)?;
        let (Some(id), Some(name), Some(arguments)) = (string(id), string(name), string(arguments)) else {
            return Err(refused());
        };
        calls.push(ToolCall { id, name, arguments });
        Ok(())
    })?;
    match count {
        Some(_) => Ok(calls),
        None => Err(OpenAiError::invalid(param, "tool_calls must be an array")),
    }
}

/// A message's content parts: the text parts' text joined; the other parts' estimated tokens
/// and the image parts counted in `counted`.
fn read_parts(param: &str, parts: &RawValue, counted: &mut Parts) -> Result<String, OpenAiError> {
    let mut text = String::new();
    let other_tokens = &mut counted.other_tokens;
    let images = &mut counted.images;
    for_each_element(parts.get(), |_, part| {
        let [kind, part_text, audio] = members(part.get(), ["type", "text", "input_audio"]).unwrap_or_default();
        match string(kind).as_deref() {
            Some("text") => match string(part_text) {
                Some(t) => text.push_str(&t),
                None => return Err(OpenAiError::invalid(param, "a text part needs a text string")),
            },
            Some("image_url" | "image" | "input_image") => {
                *other_tokens += IMAGE_PART_TOKENS;
                *images += 1;
            }
            Some("input_audio") => {
                let data = audio.and_then(|a| members(a.get(), ["data"])).and_then(|[data]| data);
                *other_tokens += estimate_audio(string(data).map_or(0, |d| d.len() as u64));
            }
            Some(_) => *other_tokens += json_text_tokens(part),
            None => return Err(OpenAiError::invalid(param, "each content part needs a type")),
        }
        Ok(())
    })?;
    Ok(text)
}

/// The tools offered (each checked: a function with a valid, unique name, an optional
/// description and an object schema) and their definitions' estimated tokens.
fn read_tools(body: &RawObject) -> Result<(Vec<GatewayTool>, u64), OpenAiError> {
    let raw = match body.get("tools") {
        None => return Ok((Vec::new(), 0)),
        Some(raw) if first_byte(raw.get()) == Some(b'n') => return Ok((Vec::new(), 0)),
        Some(raw) => raw,
    };
    let mut tools: Vec<GatewayTool> = Vec::new();
    let count = for_each_element(raw.get(), |i, tool| {
        let shape = || {
            OpenAiError::invalid(
                &format!("tools[{i}]"),
                "each tool must be {\"type\":\"function\",\"function\":{\"name\":...}}",
            )
        };
        let [kind, function] = members(tool.get(), ["type", "function"]).unwrap_or_default();
        let function = function.filter(|_| string(kind).as_deref() == Some("function")).ok_or_else(shape)?;
        let names = ["name", "description", "parameters"];
        let [name, description, parameters] = members(function.get(), names).ok_or_else(shape)?;
        let name = string(name).filter(|n| !n.is_empty()).ok_or_else(shape)?;
        let param = |field: &str| format!("tools[{i}].function.{field}");
        if !is_function_name(&name) {
            return Err(OpenAiError::invalid(&param("name"), NAME_RULE));
        }
        if tools.iter().any(|t| t.name == name) {
            return Err(OpenAiError::invalid(
                &param("name"),
                format!("tool names must be unique: {name} is given twice"),
            ));
        }
        let description = match description {
            None => String::new(),
            Some(d) if first_byte(d.get()) == Some(b'n') => String::new(),
            d => {
                string(d).ok_or_else(|| OpenAiError::invalid(&param("description"), "description must be a string"))?
            }
        };
        let parameters = match parameters {
            None => empty_object_schema(),
            Some(p) if first_byte(p.get()) == Some(b'n') => empty_object_schema(),
            Some(p) if first_byte(p.get()) == Some(b'{') => p.to_owned(),
            Some(_) => {
                return Err(OpenAiError::invalid(&param("parameters"), "parameters must be a JSON Schema object"))
            }
        };
        tools.push(GatewayTool { name, description, parameters });
        Ok(())
    })?;
    match count {
        None => Err(OpenAiError::invalid("tools", "tools must be an array")),
        Some(0) => Ok((tools, 0)),
        Some(_) => Ok((tools, json_text_tokens(raw))),
    }
}

/// The rule for tool and schema names (OpenAI's, which Anthropic's tool names also follow).
const NAME_RULE: &str = "a name must be 1 to 64 letters, digits, underscores or dashes";

/// Whether `name` follows [`NAME_RULE`].
fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The schema of a function without arguments.
fn empty_object_schema() -> Box<RawValue> {
    // Valid JSON: never the fallback.
    RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_owned()).unwrap_or_default()
}

/// `tool_choice`: `none`, `auto`, `required` or `{"type": "function", "function": {"name"}}`
/// naming one of the `tools` (when there are any: without tools the choice is never sent to a
/// translated route).
fn read_tool_choice(body: &RawObject, tools: &[GatewayTool]) -> Result<AskedChoice, OpenAiError> {
    let refused = || OpenAiError::invalid("tool_choice", "tool_choice must be none, auto, required or a function");
    let Some(raw) = body.get("tool_choice") else { return Ok(AskedChoice::Auto) };
    match first_byte(raw.get()) {
        Some(b'n') => Ok(AskedChoice::Auto),
        Some(b'"') => match string(Some(raw)).as_deref() {
            Some("auto") => Ok(AskedChoice::Auto),
            Some("none") => Ok(AskedChoice::None),
            Some("required") => Ok(AskedChoice::Required),
            _ => Err(refused()),
        },
        Some(b'{') => {
            let [kind, function] = members(raw.get(), ["type", "function"]).unwrap_or_default();
            if string(kind).as_deref() != Some("function") {
                return Err(refused());
            }
            let name = function.and_then(|f| members(f.get(), ["name"])).and_then(|[name]| string(name));
            let name = name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| OpenAiError::invalid("tool_choice.function.name", "tool_choice names no function"))?;
            if !tools.is_empty() && !tools.iter().any(|t| t.name == name) {
                let message =
                    format!("tool_choice names the function {}, which is not one of the tools", truncate(&name, 64));
                return Err(OpenAiError::invalid("tool_choice.function.name", message));
            }
            Ok(AskedChoice::Function(name))
        }
        _ => Err(refused()),
    }
}

/// `response_format`: JSON mode or not, and the estimated tokens of a `json_schema` (the
/// schema is part of the prompt the model is given).
fn read_response_format(raw: Option<&RawValue>) -> Result<(Option<JsonMode>, u64), OpenAiError> {
    let refused =
        || OpenAiError::invalid("response_format", "response_format.type must be text, json_object or json_schema");
    let Some(raw) = raw.filter(|r| first_byte(r.get()) != Some(b'n')) else { return Ok((None, 0)) };
    let [kind, json_schema] = members(raw.get(), ["type", "json_schema"]).ok_or_else(refused)?;
    match string(kind).as_deref() {
        Some("text") => Ok((None, 0)),
        Some("json_object") => {
            // Valid JSON: never the fallback.
            let schema = RawValue::from_string(r#"{"type":"object"}"#.to_owned()).unwrap_or_default();
            let json =
                JsonMode { name: JSON_OBJECT_TOOL.to_owned(), description: JSON_TOOL_DESCRIPTION.to_owned(), schema };
            Ok((Some(json), 0))
        }
        Some("json_schema") => {
            let param = |field: &str| format!("response_format.json_schema.{field}");
            let fields = json_schema.and_then(|j| members(j.get(), ["name", "description", "schema"]));
            let Some([name, description, schema]) = fields else {
                let message = "response_format.json_schema must be an object with a name and a schema";
                return Err(OpenAiError::invalid("response_format.json_schema", message));
            };
            let name = string(name).filter(|n| is_function_name(n));
            let name = name.ok_or_else(|| OpenAiError::invalid(&param("name"), NAME_RULE))?;
            let description = match description {
                None => JSON_TOOL_DESCRIPTION.to_owned(),
                Some(d) if first_byte(d.get()) == Some(b'n') => JSON_TOOL_DESCRIPTION.to_owned(),
                d => string(d)
                    .ok_or_else(|| OpenAiError::invalid(&param("description"), "description must be a string"))?,
            };
            let schema = match schema {
                None => RawValue::from_string(r#"{"type":"object"}"#.to_owned()).unwrap_or_default(),
                Some(s) if first_byte(s.get()) == Some(b'{') => s.to_owned(),
                Some(_) => return Err(OpenAiError::invalid(&param("schema"), "schema must be a JSON Schema object")),
            };
            Ok((Some(JsonMode { name, description, schema }), json_text_tokens(raw)))
        }
        _ => Err(refused()),
    }
}

/// Estimated tokens of a JSON value by its text as sent (4 characters a token).
fn json_text_tokens(raw: &RawValue) -> u64 {
    estimate_chars(raw.get().chars().count() as u64)
}

/// The first byte of a JSON text, after whitespace: which kind of value it is.
fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A JSON string's value; `None` for any other value.
fn string(raw: Option<&RawValue>) -> Option<String> {
    let text = raw?.get();
    (first_byte(text) == Some(b'"')).then(|| serde_json::from_slice(text.as_bytes()).ok()).flatten()
}

/// Hands each item of the JSON array `text`, as written, to `f` in order, keeping none of
/// them; the number of items, or `None` when `text` is not an array. `f`'s first error stops
/// the reading and is returned.
fn for_each_element<'a>(
    text: &'a str,
    mut f: impl FnMut(usize, &'a RawValue) -> Result<(), OpenAiError>,
) -> Result<Option<usize>, OpenAiError> {
    each_item(text, &mut f)
}

/// [`for_each_element`], compiled once.
type ItemFn<'f, 'a> = dyn FnMut(usize, &'a RawValue) -> Result<(), OpenAiError> + 'f;

fn each_item<'a>(text: &'a str, f: &mut ItemFn<'_, 'a>) -> Result<Option<usize>, OpenAiError> {
    struct Items<'f, 'g, 'a> {
        f: &'f mut ItemFn<'g, 'a>,
        failure: &'f mut Option<OpenAiError>,
    }

    impl<'a> Visitor<'a> for Items<'_, '_, 'a> {
        type Value = usize;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON array")
        }

        fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while let Some(item) = seq.next_element::<&'a RawValue>()? {
                if let Err(e) = (self.f)(n, item) {
                    *self.failure = Some(e);
                    return Err(serde::de::Error::custom("stopped at a refused item"));
                }
                n += 1;
            }
            Ok(n)
        }
    }

    if first_byte(text) != Some(b'[') {
        return Ok(None);
    }
    let mut failure = None;
    let read =
        serde_json::Deserializer::from_slice(text.as_bytes()).deserialize_seq(Items { f, failure: &mut failure });
    match (read, failure) {
        (_, Some(e)) => Err(e),
        (Ok(n), None) => Ok(Some(n)),
        (Err(e), None) => Err(unreadable(e)),
    }
}

/// The members `names` of the JSON object `text`, each as written (a repeated name: its last
/// value), the others skipped unread; `None` when `text` is not an object.
fn members<'a, const N: usize>(text: &'a str, names: [&str; N]) -> Option<[Option<&'a RawValue>; N]> {
    let mut found = [None; N];
    named_members(text, &names, &mut found).then_some(found)
}

/// [`members`], compiled once: fills `found` (as long as `names`); false when `text` is not
/// an object.
fn named_members<'a>(text: &'a str, names: &[&str], found: &mut [Option<&'a RawValue>]) -> bool {
    struct Named<'n, 'f, 'a> {
        names: &'n [&'n str],
        found: &'f mut [Option<&'a RawValue>],
    }

    impl<'a> Visitor<'a> for Named<'_, '_, 'a> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(name) = map.next_key::<std::borrow::Cow<'a, str>>()? {
                match self.names.iter().position(|n| *n == name).and_then(|at| self.found.get_mut(at)) {
                    Some(slot) => *slot = Some(map.next_value::<&'a RawValue>()?),
                    None => map.next_value::<IgnoredAny>().map(drop)?,
                }
            }
            Ok(())
        }
    }

    first_byte(text) == Some(b'{')
        && serde_json::Deserializer::from_slice(text.as_bytes()).deserialize_map(Named { names, found }).is_ok()
}

/// Most array items a checked value keeps: enough for every check (`stop` takes up to 4
/// strings, so a fifth shows there are too many).
const CHECKED_ITEMS: usize = 5;

/// The JSON value `text` as far as the checks read it, in bounded memory: a scalar as it is;
/// of an array its first [`CHECKED_ITEMS`] items, of an object its members named in `keep`,
/// each a scalar or else left an empty array or object.
fn slim(text: &str, keep: &[&str]) -> Value {
    fn scalar(text: &str) -> Value {
        match first_byte(text) {
            Some(b'[') => Value::Array(Vec::new()),
            Some(b'{') => Value::Object(serde_json::Map::new()),
            // The body passed `RawObject::check`: every value reads.
            _ => serde_json::from_slice(text.as_bytes()).unwrap_or(Value::Null),
        }
    }
    match first_byte(text) {
        Some(b'[') => {
            let mut items = Vec::new();
            let _ = for_each_element(text, |_, item| {
                if items.len() < CHECKED_ITEMS {
                    items.push(scalar(item.get()));
                }
                Ok(())
            });
            Value::Array(items)
        }
        Some(b'{') => {
            let mut found = [None; 4];
            let found = found.get_mut(..keep.len()).unwrap_or_default();
            named_members(text, keep, found);
            let mut members = serde_json::Map::new();
            for (name, raw) in keep.iter().zip(found.iter()) {
                if let Some(raw) = raw {
                    members.insert((*name).to_owned(), scalar(raw.get()));
                }
            }
            Value::Object(members)
        }
        _ => scalar(text),
    }
}

/// The body for an OpenAI-compatible upstream: the client's, byte for byte, with the routed
/// model name. A stream always asks for usage (`stream_options.include_usage`, merged into the
/// client's `stream_options`): without it the upstream reports none and the call could only
/// be estimated. The relay takes the usage back out of a stream whose client did not ask.
pub fn passthrough_body(req: &GatewayRequest, upstream_model: &str) -> String {
    // A string always serializes: the fallback, `""`, is never sent.
    let model = serde_json::value::to_raw_value(upstream_model).unwrap_or_default();
    if !req.stream || req.include_usage {
        return req.body.write_with(&[("model", &model)]);
    }
    let options = usage_asked(req.body.get("stream_options"));
    req.body.write_with(&[("model", &model), ("stream_options", &options)])
}

/// The client's `stream_options` (an object or null, as [`parse_request`] checked), its
/// members as written, with `include_usage: true`.
fn usage_asked(options: Option<&RawValue>) -> Box<RawValue> {
    let object =
        options.and_then(|raw| serde_json::from_slice::<RawObject>(raw.get().as_bytes()).ok()).unwrap_or_default();
    let yes = serde_json::value::to_raw_value(&true).unwrap_or_default();
    // Members read as JSON values, joined as an object: valid JSON, never the fallback (which
    // would only leave the call to an estimate).
    RawValue::from_string(object.write_with(&[("include_usage", &yes)])).unwrap_or_default()
}

/// The upstream request for an OpenAI-compatible provider: the client's body with the routed
/// model, sent as is (fields this gateway does not know pass through untouched).
pub fn passthrough_request(req: &GatewayRequest, upstream_model: &str, api_key: Option<&str>) -> UpstreamRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = api_key {
        headers.push(("authorization".to_string(), format!("Bearer {key}")));
    }
    UpstreamRequest { path: "/chat/completions".into(), headers, body: passthrough_body(req, upstream_model) }
}

/// KV key of a cached response: the user, and a hash of the request without its transport
/// fields (`stream`, `stream_options`), so a stream can be answered from a non-stream entry.
/// The request is hashed as canonical JSON (members sorted by name at every level, no
/// whitespace), so equal requests written differently share an entry.
pub fn cache_key(user_id: &str, req: &GatewayRequest) -> String {
    let mut canonical = Vec::new();
    canonical.push(b'{');
    let members = req.body.by_name().filter(|(name, _)| !matches!(*name, "stream" | "stream_options"));
    for (i, (name, value)) in members.enumerate() {
        if i > 0 {
            canonical.push(b',');
        }
        write_canonical_name(&mut canonical, name);
        write_canonical(&mut canonical, value);
    }
    canonical.push(b'}');
    format!("v1:gateway:{user_id}:{}", crate::request_id::hex(&Sha256::digest(&canonical)))
}

/// `value` as canonical JSON: every object's members sorted by name (a repeated name: its last
/// value), no whitespace, scalars as serde_json writes them. Read an array item or an object
/// member at a time from the text as sent, so a body of tiny parts takes little more memory
/// than its size.
fn write_canonical(out: &mut Vec<u8>, value: &RawValue) {
    let text = value.get();
    match first_byte(text) {
        Some(b'[') => {
            out.push(b'[');
            let mut first = true;
            // The body passed `RawObject::check`: every item reads.
            let _ = for_each_element(text, |_, item| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_canonical(out, item);
                Ok(())
            });
            out.push(b']');
        }
        Some(b'{') => {
            let mut entries = object_entries(text);
            // Equal names stay in their order (by place in the text): the last one is kept.
            entries.sort_unstable_by(|a, b| {
                member_name(a.0).cmp(&member_name(b.0)).then(a.0.get().as_ptr().cmp(&b.0.get().as_ptr()))
            });
            out.push(b'{');
            let mut first = true;
            for (i, (name, value)) in entries.iter().enumerate() {
                let name = member_name(name);
                if entries.get(i + 1).is_some_and(|next| member_name(next.0) == name) {
                    continue;
                }
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_canonical_name(out, &name);
                write_canonical(out, value);
            }
            out.push(b'}');
        }
        _ => {
            let scalar: Value = serde_json::from_slice(text.as_bytes()).unwrap_or(Value::Null);
            out.extend(serde_json::to_vec(&scalar).unwrap_or_default());
        }
    }
}

/// `"name":` as serde_json writes a member name.
fn write_canonical_name(out: &mut Vec<u8>, name: &str) {
    out.extend(serde_json::to_vec(name).unwrap_or_default());
    out.push(b':');
}

/// A member name's decoded text (borrowed unless it has escapes).
fn member_name(raw: &RawValue) -> std::borrow::Cow<'_, str> {
    let text = raw.get();
    let quoted = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    match quoted.contains('\\') {
        true => serde_json::from_slice::<String>(text.as_bytes()).unwrap_or_else(|_| quoted.to_owned()).into(),
        false => quoted.into(),
    }
}

/// The members of the JSON object `text`, each name and value as written, in order.
fn object_entries(text: &str) -> Vec<(&RawValue, &RawValue)> {
    struct Entries;

    impl<'a> Visitor<'a> for Entries {
        type Value = Vec<(&'a RawValue, &'a RawValue)>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry::<&'a RawValue, &'a RawValue>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    serde_json::Deserializer::from_slice(text.as_bytes()).deserialize_map(Entries).unwrap_or_default()
}

/// A cached completion: what is needed to answer again in either mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedCompletion {
    pub text: String,
    pub finish_reason: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl CachedCompletion {
    /// The entry as stored.
    pub fn encode(&self) -> String {
        to_json(self)
    }

    /// A cache entry as stored; `None` for anything else (an entry from another version).
    pub fn decode(stored: &str) -> Option<Self> {
        serde_json::from_slice(stored.as_bytes()).ok()
    }
}

/// Identity of a response: `chatcmpl-…` id, creation time (s), and the model it reports.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// What a Responses answer repeats of its request (`None` for other dialects).
    pub echo: Option<std::sync::Arc<crate::responses::Echo>>,
    /// The prompt's estimated tokens: what a Messages stream reports as its input before the
    /// upstream's count is known.
    pub prompt_estimate: u64,
}

/// `GET /v1/models`'s list.
#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelJson<'a>>,
}

/// One model in OpenAI's shape, with what the gateway lets a request use on it and its limits.
#[derive(Serialize)]
struct ModelJson<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
    /// `chat`, or `embedding` for a model that serves only `POST /v1/embeddings`.
    kind: Kind,
    capabilities: Capabilities,
    /// Prompt and answer together, in tokens.
    context_window: u32,
    /// The longest answer, in tokens.
    max_output_tokens: u32,
    /// `true` on the model a request without one gets (MODEL_ROUTES' `default`), so a client
    /// can name it; absent on the others.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    default: bool,
}

impl<'a> ModelJson<'a> {
    fn new(route: &'a ModelRoute, default_model: &str) -> Self {
        ModelJson {
            id: &route.name,
            object: "model",
            created: 0,
            owned_by: route.provider.as_str(),
            kind: route.kind,
            capabilities: route.capabilities,
            context_window: route.context_tokens,
            max_output_tokens: route.max_output_tokens,
            default: route.name == default_model,
        }
    }
}

/// `GET /v1/models` for the routed models; `default_model` is marked `default: true`.
pub fn models_json(routes: &[&ModelRoute], default_model: &str) -> String {
    to_json(&ModelList { object: "list", data: routes.iter().map(|&r| ModelJson::new(r, default_model)).collect() })
}

/// `GET /v1/models/{model}`: one routed model.
pub fn model_json(route: &ModelRoute, default_model: &str) -> String {
    to_json(&ModelJson::new(route, default_model))
}

fn truncate(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCallDelta;
    use serde_json::{json, Value};

    fn parse(v: Value) -> Result<GatewayRequest, OpenAiError> {
        parse_request(v.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut b = base();
        b[field] = value;
        b
    }

    #[test]
    fn cache_entries_round_trip_and_foreign_entries_are_misses() {
        let entry = CachedCompletion {
            text: "hi".into(),
            finish_reason: "stop".into(),
            prompt_tokens: 3,
            completion_tokens: 1,
        };
        assert_eq!(CachedCompletion::decode(&entry.encode()), Some(entry));
        assert_eq!(CachedCompletion::decode("not json"), None);
        assert_eq!(CachedCompletion::decode(r#"{"text":"hi","finish_reason":"stop","prompt_tokens":3}"#), None);
        assert_eq!(
            CachedCompletion::decode(
                r#"{"text":"hi","finish_reason":"stop","prompt_tokens":3,"completion_tokens":1,"v":2}"#
            ),
            None
        );
    }

    #[test]
    fn a_minimal_request_parses_and_unknown_fields_pass_through() {
        let mut v = with("logit_bias", json!({ "50256": -100 }));
        v["metadata"] = json!({ "trace": "x" });
        let r = parse(v).unwrap();
        assert_eq!(r.model, "m");
        assert!(!r.stream && !r.deterministic && !r.has_tools);
        let built = passthrough_request(&r, "upstream-m", Some("k"));
        assert_eq!(built.path, "/chat/completions");
        assert!(built.headers.contains(&("authorization".into(), "Bearer k".into())));
        assert!(passthrough_request(&r, "x", None).headers.iter().all(|(n, _)| n != "authorization"));
        let out: Value = serde_json::from_str(&built.body).unwrap();
        assert_eq!(out["model"], "upstream-m");
        assert_eq!(out["logit_bias"]["50256"], -100);
        assert_eq!(out["metadata"]["trace"], "x");
    }

    /// The pass-through body for `text` with the model routed to `upstream`.
    fn passed_through(text: &str, upstream: &str) -> String {
        passthrough_body(&parse_request(text.as_bytes()).unwrap(), upstream)
    }

    #[test]
    fn the_body_reaches_the_upstream_byte_for_byte_but_the_model() {
        let sent = concat!(
            r#"{"temperature":1.10,"model":"m","messages":[{"role":"user","content":"caf\u00e9 a\/b \ud83d\ude00"}],"#,
            r#""seed":12345678901234567890,"x_big":123456789012345678901234567890,"x_exp":1e2,"x_zero":-0,"#,
            r#""x_frac":0.10000000000000000001,"metadata":{ "b" : [1.0, 2E-3] ,"a":"\"q\""},"z":null}"#
        );
        let expected = sent.replace(r#""model":"m""#, r#""model":"up \"1\"""#);
        assert_eq!(passed_through(sent, "up \"1\""), expected);
        let r = parse_request(sent.as_bytes()).unwrap();
        assert_eq!(r.temperature.as_deref().map(RawValue::get), Some("1.10"));
        assert_eq!(r.messages[0].content, "café a/b 😀");
        assert!(r.deterministic, "a seed that fits a u64 is a seed");
    }

    #[test]
    fn whitespace_between_members_goes_but_whitespace_inside_values_stays() {
        let sent = "{ \"model\" : \"m\" ,\n \"messages\": [ {\"role\":\"user\", \"content\":\"hi\"} ] }\n";
        assert_eq!(passed_through(sent, "m"), r#"{"model":"m","messages":[ {"role":"user", "content":"hi"} ]}"#);
    }

    #[test]
    fn a_repeated_member_keeps_its_first_place_and_last_value() {
        let sent = r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"model":"b","x":1,"x":[2]}"#;
        let r = parse_request(sent.as_bytes()).unwrap();
        assert_eq!(r.model, "b");
        assert_eq!(passthrough_body(&r, "up"), r#"{"model":"up","messages":[{"role":"user","content":"hi"}],"x":[2]}"#);
    }

    #[test]
    fn member_names_are_matched_decoded_and_passed_on_as_written() {
        let sent = r#"{"mod\u0065l":"m","messages":[{"role":"user","content":"hi"}],"\u00e9t\u00e9":"\/"}"#;
        let r = parse_request(sent.as_bytes()).unwrap();
        assert_eq!(r.model, "m");
        assert_eq!(
            passthrough_body(&r, "up"),
            r#"{"mod\u0065l":"up","messages":[{"role":"user","content":"hi"}],"\u00e9t\u00e9":"\/"}"#
        );
    }

    #[test]
    fn a_stream_always_asks_the_upstream_for_usage() {
        let start = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true"#;
        let asked = r#""stream_options":{"include_usage":true}"#;
        assert_eq!(passed_through(&format!("{start}}}"), "m"), format!("{start},{asked}}}"));
        assert_eq!(
            passed_through(&format!("{start},\"stream_options\":null,\"n\":1}}"), "m"),
            format!("{start},{asked},\"n\":1}}")
        );
        // The client's other options stay, as written; a false or null include_usage turns true.
        let merged = [
            (r#"{ "include_obfuscation" : false }"#, r#"{"include_obfuscation":false,"include_usage":true}"#),
            (r#"{"include_usage":false,"x":1.0E0}"#, r#"{"include_usage":true,"x":1.0E0}"#),
            (r#"{"x":"\u00e9","include_usage":null}"#, r#"{"x":"\u00e9","include_usage":true}"#),
            ("{}", r#"{"include_usage":true}"#),
        ];
        for (options, sent) in merged {
            let body = format!("{start},\"stream_options\":{options},\"n\":1}}");
            assert_eq!(passed_through(&body, "m"), format!("{start},\"stream_options\":{sent},\"n\":1}}"), "{options}");
        }
        // A client that asked, or a call that does not stream, is sent as it was.
        let own = format!(r#"{start},"stream_options":{{ "include_usage" : true, "x":1.0 }}}}"#);
        assert_eq!(passed_through(&own, "m"), own);
        let plain = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#;
        assert_eq!(passed_through(plain, "m"), plain);
    }

    #[test]
    fn what_is_not_json_is_a_400_without_a_param() {
        let bad: &[&[u8]] = &[
            b"",
            b"{",
            b"{\"model\":\"m\",}",
            b"{\"model\":01}",
            b"{\"model\":\"a\nb\"}",
            b"{\"model\":\"\\x\"}",
            b"{\"model\":\"m\"} x",
            b"{\"model\":\"\xc3\x28\"}",
            b"{\"model\":NaN}",
            b"{\"model\":\"m\"}}",
        ];
        for input in bad {
            let err = parse_request(input).unwrap_err();
            assert_eq!((err.status, err.param.as_deref()), (400, None), "{:?}", String::from_utf8_lossy(input));
            assert!(err.message.starts_with("We could not parse the JSON body"), "{}", err.message);
        }
        for not_object in [&b"[1]"[..], b"\"m\"", b"null"] {
            let err = parse_request(not_object).unwrap_err();
            assert_eq!((err.status, err.message.as_str()), (400, "The request body must be a JSON object."));
        }
        // Raw values alone would let an escaped lone surrogate through, in a value or a name.
        for lone in [r#""x":"\ud800""#, r#""\udc00":1"#, r#""x":["\ud800\u0041"]"#] {
            let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],{lone}}}"#);
            let err = parse_request(body.as_bytes()).unwrap_err();
            assert_eq!((err.status, err.param.as_deref()), (400, None), "{lone}");
        }
    }

    #[test]
    fn nesting_deeper_than_128_levels_is_a_400_anywhere_in_the_body() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let body = |metadata: &str| {
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"metadata":{metadata}}}"#)
        };
        // 127 levels inside the body object, 128 with it.
        assert!(parse_request(body(&deep(127)).as_bytes()).is_ok());
        for n in [128, 100_000] {
            let err = parse_request(body(&deep(n)).as_bytes()).unwrap_err();
            assert_eq!((err.status, err.param.as_deref()), (400, None));
            assert!(err.message.contains("nested too deeply"), "{}", err.message);
        }
    }

    #[test]
    fn text_parts_and_roles_become_chat_messages() {
        let v = json!({ "model": "m", "messages": [
            { "role": "developer", "content": "be terse" },
            { "role": "user", "content": [{ "type": "text", "text": "a" }, { "type": "image_url", "image_url": { "url": "x" } }, { "type": "text", "text": "b" }] },
            { "role": "assistant", "content": null, "tool_calls": [] },
            { "role": "tool", "tool_call_id": "c1", "content": "42" } ] });
        let r = parse(v).unwrap();
        assert_eq!(r.messages[0], ChatMessage::new(Role::System, "be terse"));
        assert_eq!(r.messages[1], ChatMessage::new(Role::User, "ab"));
        assert_eq!(r.messages[2], ChatMessage::new(Role::Assistant, ""));
        assert_eq!(r.messages[3], ChatMessage::tool_result("c1", "42"));
    }

    #[test]
    fn tool_calls_results_tools_and_the_choice_are_kept_for_translation() {
        let calls = json!([{ "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } }]);
        let mut v = with(
            "messages",
            json!([
            { "role": "user", "content": "weather?" },
            { "role": "assistant", "content": null, "tool_calls": calls },
            { "role": "tool", "tool_call_id": "call_1", "content": [{ "type": "text", "text": "sunny" }] } ]),
        );
        v["tools"] = json!([
            { "type": "function", "function": { "name": "get_weather", "description": "Weather.", "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } },
            { "type": "function", "function": { "name": "now" } } ]);
        v["tool_choice"] = json!({ "type": "function", "function": { "name": "now" } });
        let r = parse(v.clone()).unwrap();
        let call =
            ToolCall { id: "call_1".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() };
        assert_eq!(r.messages[1], ChatMessage::assistant_calls("", vec![call]));
        assert_eq!(r.messages[2], ChatMessage::tool_result("call_1", "sunny"));
        assert_eq!(r.tool_choice, AskedChoice::Function("now".into()));
        assert_eq!(r.translated_choice(), ToolChoice::Tool("now"));
        let defs = r.tool_defs();
        assert_eq!((defs[0].name, defs[0].description), ("get_weather", "Weather."));
        assert_eq!(defs[0].parameters.get(), r#"{"properties":{"city":{"type":"string"}},"type":"object"}"#);
        assert_eq!((defs[1].name, defs[1].description), ("now", ""));
        assert_eq!(defs[1].parameters.get(), r#"{"type":"object","properties":{}}"#);
        for (choice, expected) in
            [("auto", ToolChoice::Auto), ("none", ToolChoice::None), ("required", ToolChoice::Required)]
        {
            v["tool_choice"] = json!(choice);
            assert_eq!(parse(v.clone()).unwrap().translated_choice(), expected);
        }
    }

    #[test]
    fn json_mode_becomes_a_forced_tool_of_the_schema() {
        let schema = json!({ "type": "json_schema", "json_schema": { "name": "city_weather", "schema": { "type": "object", "required": ["city"] } } });
        let r = parse(with("response_format", schema)).unwrap();
        let defs = r.tool_defs();
        assert_eq!(
            (defs.len(), defs[0].name, defs[0].parameters.get()),
            (1, "city_weather", r#"{"required":["city"],"type":"object"}"#)
        );
        assert_eq!(r.translated_choice(), ToolChoice::Tool("city_weather"));
        assert!(r.json_via_tool(Provider::Anthropic) && !r.json_via_tool(Provider::OpenAi));
        let object = parse(with("response_format", json!({ "type": "json_object" }))).unwrap();
        let defs = object.tool_defs();
        assert_eq!((defs[0].name, defs[0].parameters.get()), (JSON_OBJECT_TOOL, r#"{"type":"object"}"#));
        assert_eq!(object.translated_choice(), ToolChoice::Tool(JSON_OBJECT_TOOL));
        assert!(!parse(base()).unwrap().json_via_tool(Provider::Anthropic));
    }

    #[test]
    fn a_json_mode_tool_call_is_answered_as_text_with_finish_stop() {
        let call = ToolCall { id: "toolu_1".into(), name: "s".into(), arguments: r#"{"a":1}"#.into() };
        let decoded = Completion {
            text: "Here:".into(),
            tool_calls: vec![call],
            other_output_chars: 8,
            usage: None,
            finish_reason: Some("tool_use".into()),
        };
        let (answer, finish) = json_mode_answer(decoded.clone(), Finish::ToolCalls);
        assert_eq!((answer.text.as_str(), answer.tool_calls.len(), finish), (r#"{"a":1}"#, 0, Finish::Stop));
        let (cut, finish) = json_mode_answer(Completion { tool_calls: Vec::new(), ..decoded }, Finish::Length);
        assert_eq!((cut.text.as_str(), finish), ("Here:", Finish::Length));
        let open = ToolCallDelta { index: 0, id: Some("t".into()), name: Some("s".into()), arguments: String::new() };
        assert_eq!(json_mode_event(StreamEvent::ToolCall(open)), StreamEvent::OtherOutput("s".into()));
        let more = ToolCallDelta { index: 0, id: None, name: None, arguments: "{\"a\"".into() };
        assert_eq!(json_mode_event(StreamEvent::ToolCall(more)), StreamEvent::Delta("{\"a\"".into()));
        assert_eq!(json_mode_event(StreamEvent::Done), StreamEvent::Done);
    }

    #[test]
    fn a_route_refuses_what_it_cannot_do_naming_the_parameter() {
        let routes = crate::llm::routing::Routes::parse(
            r#"{"default":"gpt","models":{"gpt":{"provider":"openai"},"claude":{"provider":"anthropic"},
                "llama":{"provider":"workers-ai"},"plain":{"provider":"openai","capabilities":{"json_mode":false}}}}"#,
        )
        .unwrap();
        let route = |name: &str| routes.resolve(Some(name)).unwrap();
        let tools = json!([{ "type": "function", "function": { "name": "f" } }]);
        let json_mode = json!({ "type": "json_object" });
        let mut both = with("tools", tools.clone());
        both["response_format"] = json_mode.clone();
        let cases = [
            (with("tools", tools.clone()), "llama", Some("tools")),
            (with("response_format", json_mode.clone()), "llama", Some("response_format")),
            (with("response_format", json_mode.clone()), "plain", Some("response_format")),
            (both.clone(), "claude", Some("response_format")),
            (both, "gpt", None),
            (with("tools", tools), "claude", None),
            (with("response_format", json_mode), "claude", None),
            (base(), "llama", None),
            (
                with(
                    "messages",
                    json!([{ "role": "user", "content": [{ "type": "image_url", "image_url": { "url": "x" } }] }]),
                ),
                "claude",
                Some("messages"),
            ),
            (
                with(
                    "messages",
                    json!([{ "role": "user", "content": [{ "type": "image_url", "image_url": { "url": "x" } }] }]),
                ),
                "gpt",
                None,
            ),
        ];
        for (body, model, param) in cases {
            let refused = translation_refused(&parse(body.clone()).unwrap(), route(model));
            assert_eq!(
                refused.as_ref().map(|e| (e.status, e.param.as_deref())),
                param.map(|p| (400, Some(p))),
                "{model} {body}"
            );
        }
    }

    #[test]
    fn the_prompt_estimate_counts_every_billed_part() {
        let plain = parse(base()).unwrap();
        // "hi": 1 token and 4 of framing.
        assert_eq!(plain.prompt_estimate(), 5);
        let image =
            json!([{ "type": "text", "text": "hi" }, { "type": "image_url", "image_url": { "url": "data:x" } }]);
        let with_image = parse(with("messages", json!([{ "role": "user", "content": image }]))).unwrap();
        assert_eq!(with_image.prompt_estimate(), 5 + IMAGE_PART_TOKENS);
        let audio = json!([{ "type": "input_audio", "input_audio": { "data": "A".repeat(4000), "format": "mp3" } }]);
        let with_audio = parse(with("messages", json!([{ "role": "user", "content": audio }]))).unwrap();
        assert_eq!(with_audio.prompt_estimate(), 4 + 2);
        let tools =
            json!([{ "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object" } } }]);
        let tools_tokens = estimate_chars(tools.to_string().len() as u64);
        assert_eq!(parse(with("tools", tools)).unwrap().prompt_estimate(), 5 + tools_tokens);
        let schema = json!({ "type": "json_schema", "json_schema": { "name": "s", "schema": { "type": "object" } } });
        let schema_tokens = estimate_chars(schema.to_string().len() as u64);
        assert_eq!(parse(with("response_format", schema.clone())).unwrap().prompt_estimate(), 5 + schema_tokens);
        assert_eq!(parse(with("response_format", json!({ "type": "json_object" }))).unwrap().prompt_estimate(), 5);
        assert!(parse(with("response_format", json!({ "type": "json_object" }))).unwrap().json_mode.is_some());
        assert!(parse(with("response_format", schema.clone())).unwrap().json_mode.is_some());
        assert!(parse(with("response_format", json!({ "type": "text" }))).unwrap().json_mode.is_none());
        assert!(parse(base()).unwrap().json_mode.is_none());
        let calls = json!([{ "id": "c1", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } }]);
        let calls_tokens = estimate_chars(calls.to_string().len() as u64);
        let turns = json!([
            { "role": "user", "content": "hi" },
            { "role": "assistant", "content": null, "tool_calls": calls },
            { "role": "tool", "tool_call_id": "c1", "content": "42" } ]);
        // 5 for the user, 4 + the calls for the assistant, 1 + 4 for the tool's answer.
        assert_eq!(parse(with("messages", turns)).unwrap().prompt_estimate(), 5 + 4 + calls_tokens + 5);
    }

    #[test]
    fn tiny_parts_by_the_thousand_are_read_one_at_a_time_with_the_same_answers() {
        let many = |item: &str, n: usize| format!("[{}]", vec![item; n].join(","));
        let body = |messages: &str| format!(r#"{{"model":"m","messages":{messages}}}"#);
        let parts = format!(r#"[{{"role":"user","content":{}}}]"#, many("{}", 100_000));
        let err = parse_request(body(&parts).as_bytes()).unwrap_err();
        assert_eq!(
            (err.param.as_deref(), err.message.as_str()),
            (Some("messages[0].content"), "each content part needs a type")
        );
        let numbers = many("1", 100_000);
        let err = parse_request(body(&numbers).as_bytes()).unwrap_err();
        assert_eq!(
            (err.param.as_deref(), err.message.as_str()),
            (Some("messages[0]"), "each message must be an object")
        );
        let fine = many(r#"{"role":"user","content":[{"type":"text","text":"a"}]}"#, 10_000);
        let r = parse_request(body(&fine).as_bytes()).unwrap();
        assert_eq!((r.messages.len(), r.messages[9_999].content.as_str()), (10_000, "a"));
        let stop = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"stop":{}}}"#,
            many("\"s\"", 100_000)
        );
        assert_eq!(parse_request(stop.as_bytes()).unwrap_err().param.as_deref(), Some("stop"));
        let tools =
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"tools":{}}}"#, many("1", 100_000));
        assert_eq!(parse_request(tools.as_bytes()).unwrap_err().param.as_deref(), Some("tools[0]"));
    }

    #[test]
    fn message_members_are_read_like_json_values() {
        // A repeated member keeps its last value; escaped names and values are decoded.
        let v = br#"{"model":"m","messages":[{"role":"user","role":"assistant","content":null},{"r\u006fle":"user","content":"caf\u00e9"}]}"#;
        let r = parse_request(v).unwrap();
        assert_eq!(r.messages, [ChatMessage::new(Role::Assistant, ""), ChatMessage::new(Role::User, "café")]);
        let tool_id = parse(with("messages", json!([{ "role": "tool", "tool_call_id": 5, "content": "x" }])));
        assert_eq!(tool_id.unwrap_err().param.as_deref(), Some("messages[0].tool_call_id"));
        let text = parse(with("messages", json!([{ "role": "user", "content": [{ "type": "text", "text": 1 }] }])));
        assert_eq!(text.unwrap_err().message, "a text part needs a text string");
        // The role is checked before the content, whatever their order.
        let both = parse(with("messages", json!([{ "content": 5, "role": "x" }])));
        assert_eq!(both.unwrap_err().param.as_deref(), Some("messages[0].role"));
        let options = with("stream", json!(true));
        let mut options = options;
        options["stream_options"] = json!({ "x": [1, 2, 3], "include_usage": true });
        assert!(parse(options).unwrap().include_usage);
        assert!(parse(with("tool_choice", json!({ "function": { "name": "f" }, "type": "function" }))).is_ok());
        assert!(parse(with("tools", json!([]))).is_ok_and(|r| !r.has_tools));
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let cases = [
            (json!({ "messages": [] }), "model"),
            (with("messages", json!([])), "messages"),
            (with("messages", json!("hi")), "messages"),
            (with("messages", json!([{ "role": "wizard", "content": "x" }])), "messages[0].role"),
            (with("messages", json!([{ "role": "user", "content": 5 }])), "messages[0].content"),
            (with("messages", json!([{ "role": "tool", "content": "x" }])), "messages[0].tool_call_id"),
            (with("temperature", json!(5)), "temperature"),
            // Tiny but not zero: out of range, not read as -0.
            (with("temperature", json!(-1e-303)), "temperature"),
            (with("top_p", json!("high")), "top_p"),
            (with("max_tokens", json!(0)), "max_tokens"),
            (with("stream", json!("yes")), "stream"),
            (with("stream_options", json!({ "include_usage": true })), "stream_options"),
            (with("stop", json!(["a", "b", "c", "d", "e"])), "stop"),
            (with("seed", json!(1.5)), "seed"),
            (with("tools", json!([{ "type": "function" }])), "tools[0]"),
            (with("tools", json!([{ "type": "function", "function": { "name": "a b" } }])), "tools[0].function.name"),
            (
                with("tools", json!([{ "type": "function", "function": { "name": "f", "parameters": "x" } }])),
                "tools[0].function.parameters",
            ),
            (
                with("tools", json!([{ "type": "function", "function": { "name": "f", "description": 1 } }])),
                "tools[0].function.description",
            ),
            (
                with(
                    "tools",
                    json!([{ "type": "function", "function": { "name": "f" } }, { "type": "function", "function": { "name": "f" } }]),
                ),
                "tools[1].function.name",
            ),
            (
                {
                    let mut v = with("tools", json!([{ "type": "function", "function": { "name": "f" } }]));
                    v["tool_choice"] = json!({ "type": "function", "function": { "name": "g" } });
                    v
                },
                "tool_choice.function.name",
            ),
            (with("tool_choice", json!({ "type": "function" })), "tool_choice.function.name"),
            (
                with(
                    "messages",
                    json!([{ "role": "assistant", "tool_calls": [{ "id": "c", "function": { "name": "f" } }] }]),
                ),
                "messages[0].tool_calls[0]",
            ),
            (with("response_format", json!({ "type": "json_schema" })), "response_format.json_schema"),
            (
                with("response_format", json!({ "type": "json_schema", "json_schema": { "name": "a.b" } })),
                "response_format.json_schema.name",
            ),
            (
                with("response_format", json!({ "type": "json_schema", "json_schema": { "name": "a", "schema": [] } })),
                "response_format.json_schema.schema",
            ),
            (with("tool_choice", json!("sometimes")), "tool_choice"),
            (with("response_format", json!({ "type": "xml" })), "response_format"),
            (with("user", json!(5)), "user"),
        ];
        for (body, param) in cases {
            let err = parse(body.clone()).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
        assert_eq!(parse_request(b"{not json").unwrap_err().status, 400);
        assert_eq!(parse_request(b"[1]").unwrap_err().status, 400);
    }

    #[test]
    fn temperature_zero_or_a_seed_is_deterministic() {
        assert!(parse(with("temperature", json!(0))).unwrap().deterministic);
        assert!(parse(with("seed", json!(7))).unwrap().deterministic);
        assert!(!parse(with("temperature", json!(0.7))).unwrap().deterministic);
    }

    #[test]
    fn stream_options_are_read_only_when_streaming() {
        let mut v = with("stream", json!(true));
        v["stream_options"] = json!({ "include_usage": true });
        let r = parse(v).unwrap();
        assert!(r.stream && r.include_usage);
    }

    #[test]
    fn the_cache_key_ignores_transport_fields_but_not_content_or_user() {
        let a = parse(with("temperature", json!(0))).unwrap();
        let mut sv = with("temperature", json!(0));
        sv["stream"] = json!(true);
        sv["stream_options"] = json!({ "include_usage": true });
        let streamed = parse(sv).unwrap();
        assert_eq!(cache_key("u1", &a), cache_key("u1", &streamed));
        assert_ne!(cache_key("u1", &a), cache_key("u2", &a));
        let mut other = with("temperature", json!(0));
        other["messages"] = json!([{ "role": "user", "content": "bye" }]);
        assert_ne!(cache_key("u1", &a), cache_key("u1", &parse(other).unwrap()));
    }

    #[test]
    fn the_cache_key_ignores_member_order_and_whitespace_at_every_level() {
        let a =
            br#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}],"metadata":{"a":1,"b":2}}"#;
        let b = b"{\"metadata\":{\"b\":2, \"a\":1},\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"temperature\":0,\"model\":\"m\"}";
        let key = |body: &[u8]| cache_key("u1", &parse_request(body).unwrap());
        assert_eq!(key(a), key(b));
        assert!(key(a).starts_with("v1:gateway:u1:") && key(a).len() == "v1:gateway:u1:".len() + 64);
    }

    #[test]
    fn the_cache_key_hashes_canonical_json_read_piece_by_piece() {
        let body = br#"{"temperature":0,"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"metadata":{"b":[1,{"d":2,"c":1.50,"d":3}],"a":"\u00e9","\u0061a":null},"z":[]}"#;
        let canonical = r#"{"messages":[{"content":"hi","role":"user"}],"metadata":{"a":"é","aa":null,"b":[1,{"c":1.5,"d":3}]},"model":"m","temperature":0,"z":[]}"#;
        let expected = format!("v1:gateway:u1:{}", crate::request_id::hex(&Sha256::digest(canonical.as_bytes())));
        assert_eq!(cache_key("u1", &parse_request(body).unwrap()), expected);
    }

    #[test]
    fn our_errors_map_to_openai_statuses_and_types() {
        let e = OpenAiError::from(&ApiError::validation("x"));
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        assert_eq!(OpenAiError::from(&ApiError::unauthorized("no")).code, Some("invalid_api_key"));
        assert_eq!(OpenAiError::from(&ApiError::rate_limited(3)).status, 429);
        let body: Value = serde_json::from_str(&OpenAiError::model_not_found("gpt-x").body()).unwrap();
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"].as_object().unwrap().len(), 4);
    }

    #[test]
    fn an_error_body_has_openai_four_members() {
        let err = OpenAiError { status: 502, message: "m".into(), kind: "server_error", param: None, code: Some("c") };
        assert_eq!(
            serde_json::from_str::<Value>(&err.body()).unwrap(),
            json!({ "error": { "message": "m", "type": "server_error", "param": null, "code": "c" } })
        );
    }

    #[test]
    fn models_are_listed_in_openai_shape_with_their_capabilities_and_limits() {
        let routes = crate::llm::routing::Routes::parse(
            r#"{"default":"a","models":{"a":{"provider":"openai"},
                "b":{"provider":"anthropic","context_tokens":200000,"max_output_tokens":4096}}}"#,
        )
        .unwrap();
        let all: Vec<&ModelRoute> = routes.names().into_iter().filter_map(|n| routes.resolve(Some(n)).ok()).collect();
        let v: Value = serde_json::from_str(&models_json(&all, routes.default_model())).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(
            v["data"][1],
            json!({ "id": "b", "object": "model", "created": 0, "owned_by": "anthropic", "kind": "chat",
                    "capabilities": { "tools": true, "json_mode": true, "vision": false },
                    "context_window": 200000, "max_output_tokens": 4096 })
        );
        let one: Value = serde_json::from_str(&model_json(all[0], routes.default_model())).unwrap();
        assert_eq!((one["id"].as_str(), one["capabilities"]["vision"].as_bool()), (Some("a"), Some(true)));
        assert_eq!(one["context_window"], 8192);
        // Only the routes' default says so; the others carry no `default` member.
        assert_eq!((v["data"][0]["default"].as_bool(), v["data"][1].get("default")), (Some(true), None));
        assert_eq!(one["default"], true);
    }
}
