//! `POST /v1/messages` requests (Anthropic Messages): the body validated and converted into the
//! equivalent Chat Completions body, which the gateway then reads like any other, so admission,
//! usage, cache and translation stay one path; the client's own body is kept for an Anthropic
//! upstream, which gets it as sent with the routed model.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::gateway::{OpenAiError, RawObject};
use crate::llm::provider::UpstreamRequest;

/// Most stop sequences a Chat Completions upstream takes.
const MAX_STOP_SEQUENCES: usize = 4;

/// The members a Messages request may have: any other is refused, as Anthropic does, so nothing
/// unchecked (and possibly costly) reaches an upstream.
const MEMBERS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
];

/// A Messages request read: the client's body, and its Chat Completions equivalent.
#[derive(Debug)]
pub struct Converted {
    /// The body as sent, for an Anthropic upstream.
    pub original: RawObject,
    /// The equivalent `POST /v1/chat/completions` body.
    pub chat: Vec<u8>,
}

/// Validates a Messages body and converts it. `count_only`: a `count_tokens` body, which has
/// no `max_tokens` (nor `stream`).
pub fn to_chat_completions(bytes: &[u8], count_only: bool) -> Result<Converted, OpenAiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        invalid(
            "",
            if e.is_data() { "the request body must be a JSON object".into() } else { format!("invalid JSON: {e}") },
        )
    })?;
    let Value::Object(body) = value else {
        return Err(invalid("", "the request body must be a JSON object".into()));
    };
    let original: RawObject = serde_json::from_slice(bytes).map_err(|e| invalid("", format!("invalid JSON: {e}")))?;
    if let Some(extra) = body.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(invalid(extra, format!("{extra}: Extra inputs are not permitted")));
    }
    let mut chat = Map::new();
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => chat.insert("model".into(), json!(m)),
        _ => return Err(invalid("model", "model: Field required (a model name)".into())),
    };
    match body.get("max_tokens") {
        None | Some(Value::Null) if count_only => None,
        None | Some(Value::Null) => return Err(invalid("max_tokens", "max_tokens: Field required".into())),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => chat.insert("max_tokens".into(), json!(n)),
        Some(_) => return Err(invalid("max_tokens", "max_tokens: Input should be an integer >= 1".into())),
    };
    let mut messages = Vec::new();
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => {
            let text = text_of(system).ok_or_else(|| {
                invalid("system", "system: Input should be a valid string or list of text blocks".into())
            })?;
            messages.push(json!({ "role": "system", "content": text }));
        }
    }
    let turns = match body.get("messages") {
        Some(Value::Array(turns)) if !turns.is_empty() => turns,
        Some(Value::Array(_)) => return Err(invalid("messages", "messages: at least one message is required".into())),
        _ => return Err(invalid("messages", "messages: Field required (an array of messages)".into())),
    };
    for (i, turn) in turns.iter().enumerate() {
        convert_turn(i, turn, &mut messages)?;
    }
    chat.insert("messages".into(), Value::Array(messages));
    for (name, max) in [("temperature", 1.0), ("top_p", 1.0)] {
        match body.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| (0.0..=max).contains(&v)) => {
                chat.insert(name.into(), json!(n));
            }
            Some(_) => return Err(invalid(name, format!("{name}: Input should be a number between 0 and {max}"))),
        }
    }
    // Chat Completions has no top_k: it is checked, and only an Anthropic upstream gets it.
    match body.get("top_k") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {}
        Some(_) => return Err(invalid("top_k", "top_k: Input should be an integer >= 0".into())),
    }
    match body.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            if stops.len() > MAX_STOP_SEQUENCES {
                let message = format!("stop_sequences: at most {MAX_STOP_SEQUENCES} stop sequences are supported");
                return Err(invalid("stop_sequences", message));
            }
            if !stops.is_empty() {
                chat.insert("stop".into(), Value::Array(stops.clone()));
            }
        }
        Some(_) => return Err(invalid("stop_sequences", "stop_sequences: Input should be a list of strings".into())),
    }
    match body.get("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) if !count_only => {
            chat.insert("stream".into(), json!(b));
        }
        Some(_) if count_only => return Err(invalid("stream", "stream: Extra inputs are not permitted".into())),
        Some(_) => return Err(invalid("stream", "stream: Input should be a valid boolean".into())),
    }
    match body.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => match m.get("user_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(user)) => {
                chat.insert("user".into(), json!(user));
            }
            Some(_) => return Err(invalid("metadata.user_id", "metadata.user_id: Input should be a string".into())),
        },
        Some(_) => return Err(invalid("metadata", "metadata: Input should be an object".into())),
    }
    let has_tools = convert_tools(body.get("tools"), &mut chat)?;
    convert_tool_choice(body.get("tool_choice"), has_tools, &mut chat)?;
    let chat = serde_json::to_vec(&Value::Object(chat)).map_err(|e| invalid("", e.to_string()))?;
    Ok(Converted { original, chat })
}

/// The client's body for an Anthropic upstream: as sent, with the routed model.
pub fn passthrough_body(original: &RawObject, upstream_model: &str) -> String {
    // A string always serializes: the fallback, `""`, is never sent.
    let model = serde_json::value::to_raw_value(upstream_model).unwrap_or_default();
    original.write_with(&[("model", &model)])
}

/// The request for an Anthropic upstream: the client's body with the routed model, and the
/// headers every Anthropic request carries.
pub fn passthrough_request(original: &RawObject, upstream_model: &str, api_key: Option<&str>) -> UpstreamRequest {
    crate::llm::provider::anthropic_request(api_key, passthrough_body(original, upstream_model))
}

/// `POST /v1/messages/count_tokens`'s answer.
pub fn count_json(input_tokens: u64) -> String {
    #[derive(Serialize)]
    struct Count {
        input_tokens: u64,
    }
    crate::llm::to_json(&Count { input_tokens })
}

fn invalid(param: &str, message: String) -> OpenAiError {
    OpenAiError::invalid(param, message)
}

/// The text of a string, or of a list of text blocks (joined with blank lines).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Option<Vec<&str>> = blocks
                .iter()
                .map(|b| match (b.get("type").and_then(Value::as_str), b.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(text)) => Some(text),
                    _ => None,
                })
                .collect();
            texts.map(|t| t.join("\n\n"))
        }
        _ => None,
    }
}

/// Turn `i` as Chat Completions messages: a user turn's `tool_result` blocks become tool
/// messages (first, answering the assistant's calls just before), the rest one user message;
/// an assistant turn's `tool_use` blocks become its `tool_calls`.
fn convert_turn(i: usize, turn: &Value, out: &mut Vec<Value>) -> Result<(), OpenAiError> {
    let param = format!("messages[{i}]");
    let role = match turn.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        _ => return Err(invalid(&param, format!("{param}.role: Input should be 'user' or 'assistant'"))),
    };
    let blocks = match turn.get("content") {
        Some(Value::String(text)) => {
            out.push(json!({ "role": role, "content": text }));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            let message = format!("{param}.content: Input should be a string or a list of content blocks");
            return Err(invalid(&param, message));
        }
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
        match (role, kind) {
            (_, "text") => match block.get("text").and_then(Value::as_str) {
                Some(text) => parts.push(json!({ "type": "text", "text": text })),
                None => return Err(invalid(&at, format!("{at}.text: Field required (a string)"))),
            },
            ("user", "image") => parts.push(image_part(&at, block)?),
            ("user", "tool_result") => {
                let id = block.get("tool_use_id").and_then(Value::as_str).filter(|id| !id.is_empty());
                let id = id.ok_or_else(|| invalid(&at, format!("{at}.tool_use_id: Field required")))?;
                let content = match block.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(content) => text_of(content).ok_or_else(|| {
                        invalid(&at, format!("{at}.content: Input should be a string or a list of text blocks"))
                    })?,
                };
                let content = match block.get("is_error") {
                    None | Some(Value::Null | Value::Bool(false)) => content,
                    Some(Value::Bool(true)) => format!("Error: {content}"),
                    Some(_) => return Err(invalid(&at, format!("{at}.is_error: Input should be a valid boolean"))),
                };
                out.push(json!({ "role": "tool", "tool_call_id": id, "content": content }));
            }
            ("assistant", "tool_use") => {
                let id = block.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
                let name = block.get("name").and_then(Value::as_str).filter(|s| !s.is_empty());
                let (Some(id), Some(name), Some(input @ Value::Object(_))) = (id, name, block.get("input")) else {
                    let message = format!("{at}: a tool_use block needs an id, a name and an input object");
                    return Err(invalid(&at, message));
                };
                let arguments = serde_json::to_string(input).map_err(|e| invalid(&at, e.to_string()))?;
                calls.push(
                    json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } }),
                );
            }
            _ => {
                let allowed = if role == "user" { "text, image or tool_result" } else { "text or tool_use" };
                return Err(invalid(&at, format!("{at}.type: a {role} message's blocks are {allowed}")));
            }
        }
    }
    if role == "assistant" {
        let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        message.insert("content".into(), if text.is_empty() { Value::Null } else { json!(text.join("")) });
        if !calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        out.push(Value::Object(message));
    } else if !parts.is_empty() || blocks.is_empty() {
        out.push(json!({ "role": "user", "content": parts }));
    }
    Ok(())
}

/// An image block as an `image_url` part: a base64 source as a data URL, a URL source as is.
fn image_part(at: &str, block: &Value) -> Result<Value, OpenAiError> {
    let source = block.get("source");
    let field = |name: &str| source.and_then(|s| s.get(name)).and_then(Value::as_str);
    let url = match field("type") {
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(media), Some(data)) => format!("data:{media};base64,{data}"),
            _ => return Err(invalid(at, format!("{at}.source: a base64 image needs media_type and data"))),
        },
        Some("url") => match field("url") {
            Some(url) => url.to_owned(),
            None => return Err(invalid(at, format!("{at}.source.url: Field required"))),
        },
        _ => return Err(invalid(at, format!("{at}.source: an image source is base64 or url"))),
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

/// `tools` as functions; whether any were offered.
fn convert_tools(tools: Option<&Value>, chat: &mut Map<String, Value>) -> Result<bool, OpenAiError> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("tools", "tools: Input should be a list of tools".into())),
    };
    let mut functions = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        // Server tools (`type: web_search_...`) run at Anthropic and are billed apart: not offered.
        let custom = matches!(tool.get("type"), None | Some(Value::Null)) || tool["type"] == "custom";
        let name = tool.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
        let (true, Some(name), Some(schema @ Value::Object(_))) = (custom, name, tool.get("input_schema")) else {
            return Err(invalid(&at, format!("{at}: each tool needs a name and an input_schema object")));
        };
        let mut function = Map::new();
        function.insert("name".into(), json!(name));
        match tool.get("description") {
            None | Some(Value::Null) => {}
            Some(Value::String(d)) => {
                function.insert("description".into(), json!(d));
            }
            Some(_) => return Err(invalid(&at, format!("{at}.description: Input should be a string"))),
        }
        function.insert("parameters".into(), schema.clone());
        functions.push(json!({ "type": "function", "function": function }));
    }
    let offered = !functions.is_empty();
    if offered {
        chat.insert("tools".into(), Value::Array(functions));
    }
    Ok(offered)
}

/// `tool_choice`: auto, any (required), a named tool, or none; `disable_parallel_tool_use` as
/// `parallel_tool_calls: false`.
fn convert_tool_choice(
    choice: Option<&Value>,
    has_tools: bool,
    chat: &mut Map<String, Value>,
) -> Result<(), OpenAiError> {
    let Some(choice @ Value::Object(_)) = choice.filter(|c| !c.is_null()) else {
        return match choice {
            None | Some(Value::Null) => Ok(()),
            Some(_) => Err(invalid("tool_choice", "tool_choice: Input should be an object".into())),
        };
    };
    let mapped = match (choice.get("type").and_then(Value::as_str), choice.get("name").and_then(Value::as_str)) {
        (Some("auto"), _) => json!("auto"),
        (Some("any"), _) => json!("required"),
        (Some("none"), _) => json!("none"),
        (Some("tool"), Some(name)) if !name.is_empty() => json!({ "type": "function", "function": { "name": name } }),
        (Some("tool"), _) => return Err(invalid("tool_choice", "tool_choice.name: Field required".into())),
        _ => return Err(invalid("tool_choice", "tool_choice.type: Input should be auto, any, tool or none".into())),
    };
    if !has_tools {
        // Without tools there is nothing to choose: OpenAI refuses a tool_choice alone.
        return Ok(());
    }
    chat.insert("tool_choice".into(), mapped);
    match choice.get("disable_parallel_tool_use") {
        None | Some(Value::Null | Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            chat.insert("parallel_tool_calls".into(), json!(false));
        }
        Some(_) => {
            let message = "tool_choice.disable_parallel_tool_use: Input should be a valid boolean".into();
            return Err(invalid("tool_choice", message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::parse_request;

    fn chat(body: Value) -> Value {
        let converted = to_chat_completions(body.to_string().as_bytes(), false).unwrap();
        serde_json::from_slice(&converted.chat).unwrap()
    }

    fn refused(body: Value) -> OpenAiError {
        to_chat_completions(body.to_string().as_bytes(), false).unwrap_err()
    }

    #[test]
    fn a_plain_request_becomes_a_chat_completion_request() {
        let got =
            chat(json!({ "model": "claude", "max_tokens": 100, "system": [{ "type": "text", "text": "Be brief." }],
            "messages": [{ "role": "user", "content": "Hi" }], "temperature": 0.5, "top_p": 0.9, "top_k": 5,
            "stop_sequences": ["END"], "stream": true, "metadata": { "user_id": "u1" } }));
        assert_eq!(
            got,
            json!({ "model": "claude", "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
                "stream": true, "user": "u1",
                "messages": [{ "role": "system", "content": "Be brief." }, { "role": "user", "content": "Hi" }] })
        );
        // The gateway reads it as any Chat Completions body.
        let req = parse_request(&serde_json::to_vec(&got).unwrap()).unwrap();
        assert!(req.stream);
        assert_eq!(req.max_tokens, Some(100));
    }

    #[test]
    fn tool_use_and_tool_result_blocks_become_tool_calls_and_tool_messages() {
        let got = chat(json!({ "model": "m", "max_tokens": 10,
            "tools": [{ "name": "get_weather", "description": "Weather.", "input_schema": { "type": "object" } }],
            "tool_choice": { "type": "tool", "name": "get_weather", "disable_parallel_tool_use": true },
            "messages": [
                { "role": "user", "content": [{ "type": "text", "text": "Weather?" },
                    { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "AAAA" } }] },
                { "role": "assistant", "content": [{ "type": "text", "text": "Checking." },
                    { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Oslo" } }] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "toolu_1", "content": [{ "type": "text", "text": "sunny" }] },
                    { "type": "text", "text": "Thanks" }] },
            ] }));
        assert_eq!(
            got["messages"],
            json!([
                { "role": "user", "content": [{ "type": "text", "text": "Weather?" },
                    { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } }] },
                { "role": "assistant", "content": "Checking.", "tool_calls": [
                    { "id": "toolu_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } }] },
                { "role": "tool", "tool_call_id": "toolu_1", "content": "sunny" },
                { "role": "user", "content": [{ "type": "text", "text": "Thanks" }] },
            ])
        );
        assert_eq!(
            got["tools"],
            json!([{ "type": "function", "function": { "name": "get_weather", "description": "Weather.",
                "parameters": { "type": "object" } } }])
        );
        assert_eq!(got["tool_choice"], json!({ "type": "function", "function": { "name": "get_weather" } }));
        assert_eq!(got["parallel_tool_calls"], json!(false));
        let req = parse_request(&serde_json::to_vec(&got).unwrap()).unwrap();
        assert!(req.has_tools);
    }

    #[test]
    fn tool_choice_any_is_required_and_an_error_result_says_so() {
        let got = chat(json!({ "model": "m", "max_tokens": 10, "tool_choice": { "type": "any" },
            "tools": [{ "name": "f", "input_schema": { "type": "object" } }],
            "messages": [{ "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": true }] }] }));
        assert_eq!(got["tool_choice"], "required");
        assert_eq!(got["messages"], json!([{ "role": "tool", "tool_call_id": "t", "content": "Error: boom" }]));
    }

    #[test]
    fn invalid_requests_are_refused_naming_the_field() {
        let base = || json!({ "model": "m", "max_tokens": 10, "messages": [{ "role": "user", "content": "x" }] });
        let without = |name: &str| {
            let mut b = base();
            b.as_object_mut().unwrap().remove(name);
            b
        };
        let with = |name: &str, value: Value| {
            let mut b = base();
            b[name] = value;
            b
        };
        for (body, param) in [
            (without("max_tokens"), "max_tokens"),
            (without("model"), "model"),
            (with("max_tokens", json!(0)), "max_tokens"),
            (with("messages", json!([])), "messages"),
            (with("messages", json!([{ "role": "system", "content": "x" }])), "messages[0]"),
            (with("messages", json!([{ "role": "user", "content": 5 }])), "messages[0]"),
            (with("messages", json!([{ "role": "user", "content": [{ "type": "video" }] }])), "messages[0].content[0]"),
            (
                with("messages", json!([{ "role": "assistant", "content": [{ "type": "tool_result" }] }])),
                "messages[0].content[0]",
            ),
            (with("stop_sequences", json!(["a", "b", "c", "d", "e"])), "stop_sequences"),
            (with("temperature", json!(1.5)), "temperature"),
            (with("tool_choice", json!({ "type": "maybe" })), "tool_choice"),
            (with("tools", json!([{ "type": "web_search_20250305", "name": "web_search" }])), "tools[0]"),
            (with("thinking", json!({ "type": "enabled", "budget_tokens": 1024 })), "thinking"),
        ] {
            let err = refused(body.clone());
            assert_eq!((err.status, err.param.as_deref()), (400, Some(param)), "{body}: {}", err.message);
        }
        assert_eq!(refused(json!([1])).status, 400);
    }

    #[test]
    fn count_tokens_bodies_need_no_max_tokens() {
        let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }] });
        assert!(to_chat_completions(body.to_string().as_bytes(), true).is_ok());
    }

    #[test]
    fn the_native_body_is_the_clients_with_the_routed_model() {
        let sent = br#"{"max_tokens":5, "model":"claude","messages":[{"role":"user","content":"x"}],"top_k":3}"#;
        let converted = to_chat_completions(sent, false).unwrap();
        assert_eq!(
            passthrough_body(&converted.original, "up-1"),
            r#"{"max_tokens":5,"model":"up-1","messages":[{"role":"user","content":"x"}],"top_k":3}"#
        );
        let req = passthrough_request(&converted.original, "up-1", Some("k"));
        assert_eq!(req.path, "/v1/messages");
        assert!(req.headers.contains(&("x-api-key".into(), "k".into())));
        assert!(req.headers.iter().any(|(n, _)| n == "anthropic-version"));
    }
}
