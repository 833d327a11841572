//! `POST /v1/responses` requests (OpenAI's Responses API): a body checked and turned into the
//! equivalent Chat Completions body, which the gateway then reads like any other (one path for
//! admission, usage, cache and provider translation), and the request fields a response object
//! echoes back ([`Echo`]). The only state kept is the output items of answers stored with
//! `store` (the default), so that later requests may name them by `item_reference`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::gateway::OpenAiError;

/// Request members that change nothing here and are accepted as sent: hints, labels and
/// options of features with no effect on a stateless answer.
const IGNORED: &[&str] = &[
    "include",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "truncation",
    "reasoning",
    "stream_options",
    "max_tool_calls",
    "top_logprobs",
];

/// Built-in tool types OpenAI runs on its side; none runs here.
const BUILT_IN_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "file_search",
    "code_interpreter",
    "computer_use_preview",
    "computer",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
];

/// What a response object repeats of its request (OpenAI's defaults where it was silent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Echo {
    pub instructions: Value,
    pub max_output_tokens: Value,
    pub metadata: Value,
    pub parallel_tool_calls: bool,
    pub temperature: Value,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Value,
    pub top_p: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The answer's output items are kept for later `item_reference`s (`store`, true unless
    /// the request said false); the response object says it in its own `store`.
    #[serde(skip)]
    pub store: bool,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            instructions: Value::Null,
            max_output_tokens: Value::Null,
            metadata: json!({}),
            parallel_tool_calls: true,
            temperature: json!(1.0),
            text: json!({ "format": { "type": "text" } }),
            tool_choice: json!("auto"),
            tools: json!([]),
            top_p: json!(1.0),
            user: None,
            store: true,
        }
    }
}

/// How long the output items of a stored answer can be referred to, in seconds (OpenAI's 30
/// days).
pub const ITEM_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// Most `item_reference`s one request may make (each is one read of the store).
pub const MAX_ITEM_REFERENCES: usize = 100;

/// Output items of earlier answers, by id, as they were stored (their JSON objects).
pub type StoredItems = BTreeMap<String, Value>;

/// The KV key of a user's stored output item: per user, so that no one can refer to another's.
pub fn item_key(user_id: &str, item_id: &str) -> String {
    format!("v1:response-item:{user_id}:{item_id}")
}

/// The ids a Responses body's `item_reference` input items name, in order, for the edge to
/// read before [`to_chat`]; a 400 for more than [`MAX_ITEM_REFERENCES`]. A body that does not
/// parse names none (`to_chat` then says why).
pub fn item_references(bytes: &[u8]) -> Result<Vec<String>, OpenAiError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(Vec::new());
    };
    let Some(Value::Array(items)) = body.get("input") else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = items
        .iter()
        .filter(|item| item["type"] == "item_reference")
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect();
    if ids.len() > MAX_ITEM_REFERENCES {
        let message = format!("input may refer to at most {MAX_ITEM_REFERENCES} items");
        return Err(OpenAiError::invalid("input", message));
    }
    Ok(ids)
}

/// A Responses body as the Chat Completions body (JSON) that asks the same, and what its
/// answer echoes; `stored`: the items its `item_reference`s name that were found. A 400
/// naming the member for anything it cannot ask.
pub fn to_chat(bytes: &[u8], stored: &StoredItems) -> Result<(Vec<u8>, Echo), OpenAiError> {
    let body: Map<String, Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return Err(unreadable("The request body must be a JSON object.")),
        Err(e) => return Err(unreadable(&format!("We could not parse the JSON body of your request: {e}"))),
    };
    refuse_stateful(&body)?;
    let mut chat = Map::new();
    let mut echo = Echo { store: body.get("store") != Some(&Value::Bool(false)), ..Echo::default() };
    for (name, value) in &body {
        match name.as_str() {
            // Same meaning in both APIs; checked with the chat body.
            "model" | "temperature" | "top_p" | "parallel_tool_calls" | "stream" => {
                chat.insert(name.clone(), value.clone());
            }
            "input" | "instructions" | "tools" | "tool_choice" | "text" | "max_output_tokens" => {}
            "store" | "background" | "previous_response_id" | "conversation" | "prompt" => {}
            n if IGNORED.contains(&n) => {}
            n => return Err(OpenAiError::invalid(n, format!("Unknown parameter: '{n}'."))),
        }
    }
    let mut messages = Vec::new();
    match body.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            messages.push(json!({ "role": "system", "content": s }));
            echo.instructions = json!(s);
        }
        Some(_) => return Err(OpenAiError::invalid("instructions", "instructions must be a string")),
    }
    match body.get("input") {
        None | Some(Value::Null) => {
            return Err(OpenAiError::invalid("input", "Missing required parameter: 'input'."));
        }
        Some(Value::String(s)) => messages.push(json!({ "role": "user", "content": s })),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(OpenAiError::invalid("input", "input must contain at least one item"));
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                add_item(&mut messages, i, item, stored)?;
            }
        }
        Some(_) => return Err(OpenAiError::invalid("input", "input must be a string or an array of input items")),
    }
    if messages.is_empty() {
        return Err(OpenAiError::invalid("input", "input must contain at least one message"));
    }
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = body.get("tools").filter(|t| !t.is_null()) {
        let converted = chat_tools(tools)?;
        if !converted.is_empty() {
            chat.insert("tools".into(), Value::Array(converted));
        }
        echo.tools = tools.clone();
    }
    if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
        let choice_json = chat_tool_choice(choice)?;
        // A choice among no tools asks nothing (and a chat upstream refuses it).
        if chat.contains_key("tools") {
            chat.insert("tool_choice".into(), choice_json);
        }
        echo.tool_choice = choice.clone();
    }
    if let Some(text) = body.get("text").filter(|t| !t.is_null()) {
        if let Some(format) = text_format(text)? {
            chat.insert("response_format".into(), format);
        }
        let mut echoed = text.clone();
        if let Some(o) = echoed.as_object_mut() {
            o.entry("format").or_insert_with(|| json!({ "type": "text" }));
        }
        echo.text = echoed;
    }
    if let Some(max) = body.get("max_output_tokens").filter(|m| !m.is_null()) {
        if max.as_u64().is_none_or(|m| m < 1) {
            return Err(OpenAiError::invalid("max_output_tokens", "max_output_tokens must be a positive integer"));
        }
        chat.insert("max_completion_tokens".into(), max.clone());
        echo.max_output_tokens = max.clone();
    }
    for (name, slot) in [("temperature", &mut echo.temperature), ("top_p", &mut echo.top_p)] {
        if let Some(v) = body.get(name).filter(|v| v.is_number()) {
            *slot = v.clone();
        }
    }
    match body.get("parallel_tool_calls") {
        None | Some(Value::Null) => {
            chat.remove("parallel_tool_calls");
        }
        Some(Value::Bool(b)) => echo.parallel_tool_calls = *b,
        Some(_) => return Err(OpenAiError::invalid("parallel_tool_calls", "parallel_tool_calls must be a boolean")),
    }
    if let Some(metadata) = body.get("metadata").filter(|m| !m.is_null()) {
        let fits = metadata.as_object().is_some_and(|m| m.len() <= 16 && m.values().all(Value::is_string));
        if !fits {
            return Err(OpenAiError::invalid("metadata", "metadata must be an object of up to 16 strings"));
        }
        echo.metadata = metadata.clone();
    }
    match body.get("user") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) => echo.user = Some(u.clone()),
        Some(_) => return Err(OpenAiError::invalid("user", "user must be a string")),
    }
    // The chat body's own checks (model, numbers, stream) then run in `gateway::parse_request`.
    let bytes = serde_json::to_vec(&Value::Object(chat)).map_err(|e| unreadable(&e.to_string()))?;
    Ok((bytes, echo))
}

/// An error about the chat body a Responses body became, naming the Responses member instead.
pub fn renamed(mut err: OpenAiError) -> OpenAiError {
    let param = match err.param.as_deref() {
        Some(p) if p == "messages" || p.starts_with("messages[") => "input",
        Some("max_completion_tokens" | "max_tokens") => "max_output_tokens",
        Some("response_format") => "text.format",
        _ => return err,
    };
    err.param = Some(param.to_owned());
    err
}

/// Refuses what needs state kept between calls or work done on OpenAI's side.
fn refuse_stateful(body: &Map<String, Value>) -> Result<(), OpenAiError> {
    let set = |name: &str| body.get(name).is_some_and(|v| !v.is_null());
    if !matches!(body.get("store"), None | Some(Value::Null | Value::Bool(_))) {
        return Err(OpenAiError::invalid("store", "store must be a boolean"));
    }
    for name in ["previous_response_id", "conversation", "prompt"] {
        if set(name) {
            let message = format!(
                "{name} is not supported: this gateway keeps no responses or conversations, only output items \
                 (item_reference); send the input each time"
            );
            return Err(OpenAiError::invalid(name, message));
        }
    }
    match body.get("background") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
        Some(_) => Err(OpenAiError::invalid("background", "background responses are not supported")),
    }
}

/// Input item `i` added to the chat messages (an `item_reference`: the stored item it names).
fn add_item(messages: &mut Vec<Value>, i: usize, item: &Value, stored: &StoredItems) -> Result<(), OpenAiError> {
    let param = |field: &str| if field.is_empty() { format!("input[{i}]") } else { format!("input[{i}].{field}") };
    let Some(o) = item.as_object() else {
        return Err(OpenAiError::invalid(&param(""), "each input item must be an object"));
    };
    let kind = match o.get("type") {
        None | Some(Value::Null) => "message",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(OpenAiError::invalid(&param("type"), "type must be a string")),
    };
    match kind {
        "message" => messages.push(message(o, &param)?),
        "function_call" => {
            let call_id = required_string(o, "call_id", &param)?;
            let name = required_string(o, "name", &param)?;
            let arguments = match o.get("arguments") {
                Some(Value::String(a)) => a.clone(),
                _ => return Err(OpenAiError::invalid(&param("arguments"), "arguments must be a JSON string")),
            };
            let call =
                json!({ "id": call_id, "type": "function", "function": { "name": name, "arguments": arguments } });
            // Calls of one turn join the assistant message before them (text, or other calls).
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    let calls = last.as_object_mut().map(|m| m.entry("tool_calls").or_insert_with(|| json!([])));
                    if let Some(Value::Array(calls)) = calls {
                        calls.push(call);
                    }
                }
                _ => messages.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] })),
            }
        }
        "function_call_output" => {
            let call_id = required_string(o, "call_id", &param)?;
            let output = match o.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for part in parts {
                        match (part["type"].as_str(), part["text"].as_str()) {
                            (Some("input_text" | "output_text"), Some(t)) => text.push_str(t),
                            _ => {
                                return Err(OpenAiError::invalid(
                                    &param("output"),
                                    "a function_call_output's output must be a string or input_text parts",
                                ))
                            }
                        }
                    }
                    text
                }
                _ => return Err(OpenAiError::invalid(&param("output"), "output must be a string")),
            };
            messages.push(json!({ "role": "tool", "tool_call_id": call_id, "content": output }));
        }
        // The model's own reasoning summary: nothing a chat model is sent.
        "reasoning" => {}
        "item_reference" => {
            let id = required_string(o, "id", &param)?;
            // Stored items are answers' own (messages and function calls), never references.
            match stored.get(&id).filter(|item| item["type"] != "item_reference") {
                Some(item) => add_item(messages, i, item, &StoredItems::new())?,
                None => {
                    let message = format!(
                        "No item found with id '{id}': only the output of your own answers stored in the last \
                         30 days (store true, the default) can be referred to; send the item itself instead"
                    );
                    return Err(OpenAiError::invalid(&param("id"), message));
                }
            }
        }
        other => {
            return Err(OpenAiError::invalid(
                &param("type"),
                format!("input items of type {other} are not supported (message, function_call, function_call_output)"),
            ))
        }
    }
    Ok(())
}

/// A `message` item as a chat message.
fn message(o: &Map<String, Value>, param: &dyn Fn(&str) -> String) -> Result<Value, OpenAiError> {
    let role = match o.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant" | "system" | "developer")) => r,
        _ => return Err(OpenAiError::invalid(&param("role"), "role must be user, assistant, system or developer")),
    };
    let content = match o.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (k, part) in parts.iter().enumerate() {
                out.push(content_part(part, role, &param(&format!("content[{k}]")))?);
            }
            // An assistant's and a system message's content are text in Chat Completions.
            if role == "user" {
                Value::Array(out)
            } else {
                Value::String(out.iter().filter_map(|p| p["text"].as_str()).collect())
            }
        }
        _ => return Err(OpenAiError::invalid(&param("content"), "content must be a string or an array of parts")),
    };
    Ok(json!({ "role": role, "content": content }))
}

/// One content part in Chat Completions' form.
fn content_part(part: &Value, role: &str, param: &str) -> Result<Value, OpenAiError> {
    let kind = part["type"].as_str().unwrap_or_default();
    match kind {
        "input_text" | "output_text" | "text" => match part["text"].as_str() {
            Some(t) => Ok(json!({ "type": "text", "text": t })),
            None => Err(OpenAiError::invalid(param, "a text part needs a text string")),
        },
        "refusal" if role == "assistant" => Ok(json!({ "type": "text", "text": part["refusal"].as_str() })),
        "input_image" if role == "user" => {
            let Some(url) = part["image_url"].as_str() else {
                return Err(OpenAiError::invalid(
                    param,
                    "an input_image needs an image_url (a URL or a data URL); file_id is not supported",
                ));
            };
            let mut image = json!({ "url": url });
            if let Some(detail) = part["detail"].as_str() {
                image["detail"] = json!(detail);
            }
            Ok(json!({ "type": "image_url", "image_url": image }))
        }
        "" => Err(OpenAiError::invalid(param, "each content part needs a type")),
        other => Err(OpenAiError::invalid(param, format!("content parts of type {other} are not supported here"))),
    }
}

fn required_string(o: &Map<String, Value>, name: &str, param: &dyn Fn(&str) -> String) -> Result<String, OpenAiError> {
    match o.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(OpenAiError::invalid(&param(name), format!("{name} must be a non-empty string"))),
    }
}

/// Responses tools (`{type: "function", name, description, parameters, strict}`) as chat tools.
fn chat_tools(tools: &Value) -> Result<Vec<Value>, OpenAiError> {
    let Some(tools) = tools.as_array() else {
        return Err(OpenAiError::invalid("tools", "tools must be an array"));
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = tool["type"].as_str().unwrap_or_default();
        if kind != "function" {
            let message = match BUILT_IN_TOOLS.contains(&kind) {
                true => format!("the built-in tool {kind} is not supported: only function tools are"),
                false => "each tool must be {\"type\":\"function\",\"name\":...}".to_owned(),
            };
            return Err(OpenAiError::invalid(&format!("{param}.type"), message));
        }
        let name = match tool["name"].as_str() {
            Some(n) if !n.is_empty() => n,
            _ => return Err(OpenAiError::invalid(&format!("{param}.name"), "a function tool needs a name")),
        };
        let mut function = Map::new();
        function.insert("name".into(), json!(name));
        for field in ["description", "parameters", "strict"] {
            if let Some(v) = tool.get(field).filter(|v| !v.is_null()) {
                function.insert(field.into(), v.clone());
            }
        }
        if function.get("parameters").is_some_and(|p| !p.is_object()) {
            return Err(OpenAiError::invalid(
                &format!("{param}.parameters"),
                "parameters must be a JSON schema object",
            ));
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(out)
}

/// `tool_choice` in Chat Completions' form.
fn chat_tool_choice(choice: &Value) -> Result<Value, OpenAiError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "none" | "auto" | "required") => Ok(choice.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => match o.get("name") {
            Some(Value::String(name)) => Ok(json!({ "type": "function", "function": { "name": name } })),
            _ => Err(OpenAiError::invalid("tool_choice.name", "a function tool_choice needs a name")),
        },
        _ => Err(OpenAiError::invalid("tool_choice", "tool_choice must be none, auto, required or a function")),
    }
}

/// `text.format` as a chat `response_format` (`None` for plain text).
fn text_format(text: &Value) -> Result<Option<Value>, OpenAiError> {
    let Some(text) = text.as_object() else {
        return Err(OpenAiError::invalid("text", "text must be an object"));
    };
    let format = match text.get("format") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(f)) => f,
        Some(_) => return Err(OpenAiError::invalid("text.format", "text.format must be an object")),
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let name = match format.get("name") {
                Some(Value::String(n)) if !n.is_empty() => n,
                _ => return Err(OpenAiError::invalid("text.format.name", "a json_schema format needs a name")),
            };
            let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
                return Err(OpenAiError::invalid("text.format.schema", "a json_schema format needs a schema object"));
            };
            let mut spec = Map::new();
            spec.insert("name".into(), json!(name));
            spec.insert("schema".into(), schema.clone());
            for field in ["description", "strict"] {
                if let Some(v) = format.get(field).filter(|v| !v.is_null()) {
                    spec.insert(field.into(), v.clone());
                }
            }
            Ok(Some(json!({ "type": "json_schema", "json_schema": spec })))
        }
        _ => Err(OpenAiError::invalid("text.format.type", "text.format.type must be text, json_object or json_schema")),
    }
}

/// The 400 for a body that is not a JSON object (no member to name).
fn unreadable(message: &str) -> OpenAiError {
    OpenAiError { param: None, ..OpenAiError::invalid("", message) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::parse_request;

    fn convert(body: Value) -> Result<(Value, Echo), OpenAiError> {
        to_chat(body.to_string().as_bytes(), &StoredItems::new())
            .map(|(bytes, echo)| (serde_json::from_slice(&bytes).unwrap(), echo))
    }

    fn refused(body: Value) -> OpenAiError {
        convert(body).expect_err("refused")
    }

    #[test]
    fn a_string_input_with_instructions_is_a_system_and_a_user_message() {
        let (chat, echo) =
            convert(json!({ "model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 50 }))
                .unwrap();
        assert_eq!(
            chat,
            json!({ "model": "m", "max_completion_tokens": 50, "messages": [
                { "role": "system", "content": "be brief" }, { "role": "user", "content": "hi" } ] })
        );
        assert_eq!(echo.instructions, json!("be brief"));
        assert_eq!(echo.max_output_tokens, json!(50));
        // The gateway reads the result like any chat body.
        let req = parse_request(serde_json::to_vec(&chat).unwrap().as_slice()).unwrap();
        assert_eq!(req.max_tokens, Some(50));
        assert_eq!(req.messages.len(), 2);
    }

    #[test]
    fn items_become_messages_tool_calls_and_tool_results() {
        let (chat, _) = convert(json!({ "model": "m", "stream": true, "input": [
            { "role": "developer", "content": "dev" },
            { "type": "message", "role": "user", "content": [
                { "type": "input_text", "text": "look " },
                { "type": "input_image", "image_url": "https://x/y.png", "detail": "low" } ] },
            { "type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
              "content": [{ "type": "output_text", "text": "let me check", "annotations": [] }] },
            { "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}" },
            { "type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{}" },
            { "type": "function_call_output", "call_id": "call_1", "output": "one" },
            { "type": "function_call_output", "call_id": "call_2", "output": [{ "type": "input_text", "text": "two" }] },
            { "type": "reasoning", "id": "rs_1", "summary": [] },
            { "type": "function_call", "call_id": "call_3", "name": "f", "arguments": "{}" }
        ] }))
        .unwrap();
        assert_eq!(chat["stream"], json!(true));
        assert_eq!(
            chat["messages"],
            json!([
                { "role": "developer", "content": "dev" },
                { "role": "user", "content": [
                    { "type": "text", "text": "look " },
                    { "type": "image_url", "image_url": { "url": "https://x/y.png", "detail": "low" } } ] },
                { "role": "assistant", "content": "let me check", "tool_calls": [
                    { "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } },
                    { "id": "call_2", "type": "function", "function": { "name": "g", "arguments": "{}" } } ] },
                { "role": "tool", "tool_call_id": "call_1", "content": "one" },
                { "role": "tool", "tool_call_id": "call_2", "content": "two" },
                { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "call_3", "type": "function", "function": { "name": "f", "arguments": "{}" } } ] }
            ])
        );
        parse_request(serde_json::to_vec(&chat).unwrap().as_slice()).unwrap();
    }

    #[test]
    fn tools_choice_and_formats_take_their_chat_forms() {
        let params = json!({ "type": "object", "properties": { "city": { "type": "string" } } });
        let (chat, echo) = convert(json!({ "model": "m", "input": "x",
            "tools": [{ "type": "function", "name": "w", "description": "d", "parameters": params, "strict": true }],
            "tool_choice": { "type": "function", "name": "w" }, "parallel_tool_calls": false,
            "text": { "format": { "type": "json_schema", "name": "out", "schema": params, "strict": true } },
            "store": false, "include": [], "metadata": { "k": "v" }, "temperature": 0 }))
        .unwrap();
        assert_eq!(
            chat["tools"],
            json!([{ "type": "function", "function": { "name": "w", "description": "d", "parameters": params, "strict": true } }])
        );
        assert_eq!(chat["tool_choice"], json!({ "type": "function", "function": { "name": "w" } }));
        assert_eq!(
            chat["response_format"],
            json!({ "type": "json_schema", "json_schema": { "name": "out", "schema": params, "strict": true } })
        );
        assert_eq!(chat["parallel_tool_calls"], json!(false));
        assert_eq!(chat["temperature"], json!(0));
        assert!(chat.get("metadata").is_none() && chat.get("store").is_none());
        assert!(!echo.parallel_tool_calls);
        assert_eq!(echo.metadata, json!({ "k": "v" }));
        assert_eq!(echo.tool_choice, json!({ "type": "function", "name": "w" }));
        let req = parse_request(serde_json::to_vec(&chat).unwrap().as_slice()).unwrap();
        assert!(req.has_tools && req.json_mode.is_some() && req.deterministic);
        let (chat, _) = convert(json!({ "model": "m", "input": "x", "tools": [], "tool_choice": "none" })).unwrap();
        assert!(chat.get("tools").is_none() && chat.get("tool_choice").is_none());
        let (chat, _) =
            convert(json!({ "model": "m", "input": "x", "text": { "format": { "type": "json_object" } } })).unwrap();
        assert_eq!(chat["response_format"], json!({ "type": "json_object" }));
        let (chat, echo) = convert(json!({ "model": "m", "input": "x", "text": { "verbosity": "low" } })).unwrap();
        assert!(chat.get("response_format").is_none());
        assert_eq!(echo.text, json!({ "verbosity": "low", "format": { "type": "text" } }));
    }

    #[test]
    fn what_needs_stored_state_or_built_in_tools_is_refused_with_its_param() {
        let cases = [
            (json!({ "model": "m", "input": "x", "store": "yes" }), "store"),
            (json!({ "model": "m", "input": "x", "previous_response_id": "resp_1" }), "previous_response_id"),
            (json!({ "model": "m", "input": "x", "conversation": "conv_1" }), "conversation"),
            (json!({ "model": "m", "input": "x", "background": true }), "background"),
            (json!({ "model": "m", "input": "x", "tools": [{ "type": "web_search" }] }), "tools[0].type"),
            (json!({ "model": "m", "input": "x", "tools": [{ "type": "function" }] }), "tools[0].name"),
            (json!({ "model": "m", "input": "x", "tools": {} }), "tools"),
            (json!({ "model": "m", "input": [{ "type": "item_reference", "id": "msg_1" }] }), "input[0].id"),
            (json!({ "model": "m", "input": [{ "type": "item_reference" }] }), "input[0].id"),
            (json!({ "model": "m", "input": [{ "type": "file_search_call" }] }), "input[0].type"),
            (json!({ "model": "m", "input": [{ "role": "tool", "content": "x" }] }), "input[0].role"),
            (json!({ "model": "m", "input": [{ "type": "function_call", "name": "f" }] }), "input[0].call_id"),
            (json!({ "model": "m", "input": [] }), "input"),
            (json!({ "model": "m" }), "input"),
            (json!({ "model": "m", "input": 3 }), "input"),
            (json!({ "model": "m", "input": "x", "frobnicate": 1 }), "frobnicate"),
            (
                json!({ "model": "m", "input": "x", "text": { "format": { "type": "json_schema" } } }),
                "text.format.name",
            ),
            (json!({ "model": "m", "input": "x", "max_output_tokens": 0 }), "max_output_tokens"),
            (json!({ "model": "m", "input": "x", "tool_choice": "sometimes" }), "tool_choice"),
        ];
        for (body, param) in cases {
            let err = refused(body.clone());
            assert_eq!((err.status, err.param.as_deref()), (400, Some(param)), "{body}");
        }
        let err = to_chat(b"[1]", &StoredItems::new()).unwrap_err();
        assert_eq!((err.status, err.param), (400, None));
        assert_eq!(to_chat(b"{", &StoredItems::new()).unwrap_err().status, 400);
    }

    #[test]
    fn item_references_become_the_stored_items_they_name() {
        let body = json!({ "model": "m", "store": true, "input": [
            { "role": "user", "content": "weather?" },
            { "type": "item_reference", "id": "msg_a" },
            { "type": "item_reference", "id": "fc_a_0" },
            { "type": "function_call_output", "call_id": "call_1", "output": "sunny" },
        ] });
        let text = body.to_string();
        assert_eq!(item_references(text.as_bytes()).unwrap(), vec!["msg_a", "fc_a_0"]);
        let stored = StoredItems::from([
            (
                "msg_a".to_owned(),
                json!({ "type": "message", "id": "msg_a", "role": "assistant",
                "content": [{ "type": "output_text", "text": "Let me look.", "annotations": [] }] }),
            ),
            (
                "fc_a_0".to_owned(),
                json!({ "type": "function_call", "id": "fc_a_0", "call_id": "call_1",
                "name": "get_weather", "arguments": "{}" }),
            ),
        ]);
        let (chat, echo) = to_chat(text.as_bytes(), &stored).unwrap();
        let chat: Value = serde_json::from_slice(&chat).unwrap();
        assert_eq!(
            chat["messages"],
            json!([
                { "role": "user", "content": "weather?" },
                { "role": "assistant", "content": "Let me look.", "tool_calls": [
                    { "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{}" } }] },
                { "role": "tool", "tool_call_id": "call_1", "content": "sunny" },
            ])
        );
        assert!(echo.store);
        // A reference to nothing stored (another user's, expired, or never stored) is a 400.
        let err = to_chat(text.as_bytes(), &StoredItems::new()).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("input[1].id")));
        let many: Vec<Value> =
            (0..=MAX_ITEM_REFERENCES).map(|n| json!({ "type": "item_reference", "id": format!("m{n}") })).collect();
        let err = item_references(json!({ "input": many }).to_string().as_bytes()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));
        assert!(!to_chat(br#"{"model":"m","input":"x","store":false}"#, &stored).unwrap().1.store);
    }

    #[test]
    fn chat_errors_name_the_responses_member() {
        let named = |param: &str| renamed(OpenAiError::invalid(param, "x")).param.unwrap();
        assert_eq!(named("messages[2].content"), "input");
        assert_eq!(named("max_completion_tokens"), "max_output_tokens");
        assert_eq!(named("response_format"), "text.format");
        assert_eq!(named("temperature"), "temperature");
        let (chat, _) = convert(json!({ "model": "m", "input": "x", "temperature": 9 })).unwrap();
        let err = renamed(parse_request(serde_json::to_vec(&chat).unwrap().as_slice()).unwrap_err());
        assert_eq!(err.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn default_sdk_fields_are_accepted() {
        // What the SDKs send on a default call: store left out or false, nulls for unset fields.
        let body = json!({ "model": "m", "input": [{ "role": "user", "content": [{ "type": "input_text", "text": "hi" }] }],
            "store": false, "previous_response_id": null, "background": null, "include": null, "user": "u1",
            "reasoning": null, "service_tier": "auto", "truncation": "disabled" });
        let (chat, echo) = convert(body).unwrap();
        assert_eq!(chat["messages"], json!([{ "role": "user", "content": [{ "type": "text", "text": "hi" }] }]));
        assert_eq!(echo.user.as_deref(), Some("u1"));
    }
}
