//! `POST /v1/embeddings`: the request checked (OpenAI's fields, the rest passed through), the
//! routes that may serve it (OpenAI-compatible upstreams only), the upstream request (the
//! client's body with the routed model), and the prompt tokens read from the upstream's answer.

use serde_json::value::RawValue;
use serde_json::Value;

use crate::admission::in_plan;
use crate::gateway::{unreadable, OpenAiError, RawObject};
use crate::llm::context::estimate_chars;
use crate::llm::provider::{Provider, UpstreamRequest};
use crate::llm::routing::ModelRoute;
use crate::plans::Plan;

/// Most inputs in one request (OpenAI's own limit).
pub const MAX_INPUTS: usize = 2048;

/// A validated embeddings request.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    /// The body as sent, for the upstream.
    pub body: RawObject,
    pub model: String,
    /// How many vectors the request asks for.
    pub inputs: usize,
    /// The input's estimated tokens: 4 characters a token for text, a token per token id.
    pub prompt_estimate: u64,
}

const INPUT_SHAPE: &str =
    "input must be a string, an array of strings, an array of token integers or an array of token arrays";

/// Parses and validates a `POST /v1/embeddings` body; a bad field is a 400 naming it.
pub fn parse_request(bytes: &[u8]) -> Result<EmbeddingsRequest, OpenAiError> {
    let body: RawObject = serde_json::from_slice(bytes).map_err(unreadable)?;
    body.check()?;
    let model = match body.checked("model")? {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err(OpenAiError::invalid("model", "you must provide a model parameter")),
    };
    let (inputs, prompt_estimate) = check_input(body.get("input"))?;
    match body.checked("encoding_format")? {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        Some(_) => return Err(OpenAiError::invalid("encoding_format", "encoding_format must be float or base64")),
    }
    match body.checked("dimensions")? {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| (1..=u64::from(u32::MAX)).contains(&d)) => {}
        Some(_) => return Err(OpenAiError::invalid("dimensions", "dimensions must be a positive integer")),
    }
    if !matches!(body.checked("user")?, None | Some(Value::Null) | Some(Value::String(_))) {
        return Err(OpenAiError::invalid("user", "user must be a string"));
    }
    Ok(EmbeddingsRequest { body, model, inputs, prompt_estimate })
}

/// The number of inputs and their estimated tokens. `input` is one of OpenAI's four shapes: a
/// string, an array of strings, an array of token ids, or an array of token-id arrays.
fn check_input(raw: Option<&RawValue>) -> Result<(usize, u64), OpenAiError> {
    let invalid = |message: &str| OpenAiError::invalid("input", message);
    let raw = raw.filter(|r| r.get() != "null").ok_or_else(|| invalid("you must provide an input parameter"))?;
    // Read as a `Value`, whose code the gateway already has (a derived untagged enum costs wasm).
    let input: Value = serde_json::from_str(raw.get()).map_err(|_| invalid(INPUT_SHAPE))?;
    let text = |s: &str| estimate_chars(s.chars().count() as u64).max(1);
    let is_token = |v: &Value| v.as_u64().is_some_and(|t| t <= u64::from(u32::MAX));
    let tokens = |v: &Value| v.as_array().filter(|t| t.iter().all(is_token)).map(|t| t.len() as u64);
    let (count, estimate, empty) = match &input {
        Value::String(s) => (1, text(s), s.is_empty()),
        Value::Array(items) if items.is_empty() => return Err(invalid("input must not be empty")),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let texts = items.iter().filter_map(Value::as_str);
            (items.len(), texts.clone().map(text).sum(), texts.clone().any(str::is_empty))
        }
        Value::Array(items) if items.iter().all(is_token) => (1, items.len() as u64, false),
        Value::Array(items) if items.iter().all(|v| tokens(v).is_some()) => {
            let lengths = items.iter().filter_map(tokens);
            (items.len(), lengths.clone().sum(), lengths.clone().any(|n| n == 0))
        }
        _ => return Err(invalid(INPUT_SHAPE)),
    };
    if empty {
        return Err(invalid("input must not contain an empty string or an empty token array"));
    }
    if count > MAX_INPUTS {
        return Err(invalid(&format!("input has {count} items, above the {MAX_INPUTS} allowed per request")));
    }
    Ok((count, estimate))
}

/// The routes a request for `chain`'s first model may take under `plan`: that model, which
/// must be OpenAI-compatible (only those upstreams serve embeddings; 400 naming `model`),
/// then the OpenAI-compatible fallbacks the plan allows.
pub fn routes(chain: Vec<ModelRoute>, plan: &Plan) -> Result<Vec<ModelRoute>, OpenAiError> {
    let Some(first) = chain.first() else {
        return Err(OpenAiError::invalid("model", "you must provide a model parameter"));
    };
    if first.provider != Provider::OpenAi {
        let message = format!(
            "model {} is served by {}, which has no embeddings endpoint here: embeddings need an OpenAI-compatible model",
            first.name,
            first.provider.as_str()
        );
        return Err(OpenAiError::invalid("model", message));
    }
    Ok(in_plan(chain, plan, |route| route.provider == Provider::OpenAi))
}

/// The upstream request: the client's body, byte for byte, with the routed model.
pub fn upstream_request(req: &EmbeddingsRequest, upstream_model: &str, api_key: Option<&str>) -> UpstreamRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = api_key {
        headers.push(("authorization".to_string(), format!("Bearer {key}")));
    }
    // A string always serializes: the fallback, `""`, is never sent.
    let model = serde_json::value::to_raw_value(upstream_model).unwrap_or_default();
    UpstreamRequest { path: "/embeddings".into(), headers, body: req.body.write_with(&[("model", &model)]) }
}

/// The prompt tokens the upstream reported in its answer (`usage.prompt_tokens`, else
/// `usage.total_tokens`; `None` when it reported neither), or an error when the body is not
/// an embeddings answer (no `data` list). Read as the gateway reads requests, member by member
/// as raw text: the vectors are never parsed.
pub fn reported_prompt_tokens(body: &[u8]) -> Result<Option<u64>, String> {
    let not_a_list = || "the model's answer is not an embeddings list".to_string();
    let answer: RawObject = serde_json::from_slice(body).map_err(|_| not_a_list())?;
    if !answer.get("data").is_some_and(|d| d.get().starts_with('[')) {
        return Err(not_a_list());
    }
    let usage = answer.checked_keeping("usage", &["prompt_tokens", "total_tokens"]).ok().flatten();
    let count = |name: &str| usage.as_ref().and_then(|u| u.get(name)).and_then(Value::as_u64).filter(|&t| t > 0);
    Ok(count("prompt_tokens").or_else(|| count("total_tokens")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::routing::Routes;
    use crate::plans::Plans;

    fn parse(body: &str) -> Result<EmbeddingsRequest, OpenAiError> {
        parse_request(body.as_bytes())
    }

    fn refused(body: &str) -> (String, String) {
        let err = parse(body).unwrap_err();
        assert_eq!((err.status, err.kind), (400, "invalid_request_error"), "{body}");
        (err.param.unwrap_or_default(), err.message)
    }

    #[test]
    fn every_input_shape_is_accepted_and_estimated() {
        let one = parse(r#"{"model":"e","input":"abcdefgh"}"#).unwrap();
        assert_eq!((one.model.as_str(), one.inputs, one.prompt_estimate), ("e", 1, 2));
        let batch = parse(r#"{"model":"e","input":["abcd","a","abcdefghi"]}"#).unwrap();
        assert_eq!((batch.inputs, batch.prompt_estimate), (3, 1 + 1 + 3));
        let tokens = parse(r#"{"model":"e","input":[1,2,3,4,5]}"#).unwrap();
        assert_eq!((tokens.inputs, tokens.prompt_estimate), (1, 5));
        let arrays = parse(r#"{"model":"e","input":[[1,2],[3]],"encoding_format":"base64","dimensions":8}"#).unwrap();
        assert_eq!((arrays.inputs, arrays.prompt_estimate), (2, 3));
        let nulls = parse(r#"{"model":"e","input":"x","encoding_format":null,"dimensions":null,"user":"u"}"#);
        assert!(nulls.is_ok());
    }

    #[test]
    fn bad_input_is_refused_naming_the_field() {
        for body in [
            r#"{"model":"e"}"#,
            r#"{"model":"e","input":null}"#,
            r#"{"model":"e","input":""}"#,
            r#"{"model":"e","input":[]}"#,
            r#"{"model":"e","input":["a",""]}"#,
            r#"{"model":"e","input":[[1],[]]}"#,
            r#"{"model":"e","input":[1,"a"]}"#,
            r#"{"model":"e","input":[-1]}"#,
            r#"{"model":"e","input":[1.5]}"#,
            r#"{"model":"e","input":{"text":"a"}}"#,
            r#"{"model":"e","input":42}"#,
        ] {
            assert_eq!(refused(body).0, "input", "{body}");
        }
        let many = format!(r#"{{"model":"e","input":{}}}"#, serde_json::to_string(&vec!["a"; MAX_INPUTS + 1]).unwrap());
        assert_eq!(refused(&many), ("input".into(), "input has 2049 items, above the 2048 allowed per request".into()));
        assert_eq!(refused(r#"{"input":"a"}"#).0, "model");
        assert_eq!(refused(r#"{"model":"","input":"a"}"#).0, "model");
        assert_eq!(refused(r#"{"model":7,"input":"a"}"#).0, "model");
        assert_eq!(refused(r#"{"model":"e","input":"a","encoding_format":"int8"}"#).0, "encoding_format");
        for dims in ["0", "-3", "1.5", "\"8\"", "true"] {
            let body = format!(r#"{{"model":"e","input":"a","dimensions":{dims}}}"#);
            assert_eq!(refused(&body).0, "dimensions", "{dims}");
        }
        assert_eq!(refused(r#"{"model":"e","input":"a","user":1}"#).0, "user");
        assert_eq!(parse("[1]").unwrap_err().message, "The request body must be a JSON object.");
        assert_eq!(parse("{").unwrap_err().status, 400);
    }

    #[test]
    fn the_upstream_gets_the_body_as_sent_with_the_routed_model() {
        let req = parse(r#"{"input": ["a"] ,"model":"e","x_extra":{"k":1.50},"dimensions":4}"#).unwrap();
        let built = upstream_request(&req, "upstream-e", Some("sk"));
        assert_eq!(built.path, "/embeddings");
        assert_eq!(built.body, r#"{"input":["a"],"model":"upstream-e","x_extra":{"k":1.50},"dimensions":4}"#);
        assert!(built.headers.contains(&("authorization".into(), "Bearer sk".into())));
        assert_eq!(upstream_request(&req, "u", None).headers.len(), 1);
    }

    #[test]
    fn only_openai_compatible_routes_serve_embeddings() {
        let routes = Routes::parse(
            r#"{"default":"e","models":{
            "e":{"provider":"openai","fallbacks":["claude","e2","e3"]},
            "e2":{"provider":"openai"},"e3":{"provider":"openai"},
            "claude":{"provider":"anthropic","fallbacks":["e"]}}}"#,
        )
        .unwrap();
        let chain = |name: &str| routes.chain(name).into_iter().cloned().collect::<Vec<_>>();
        let plans = Plans::parse(
            r#"{"free":{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"models":["e","e2","claude"]}}"#,
        )
        .unwrap();
        let plan = plans.get("free");
        let kept: Vec<String> = super::routes(chain("e"), plan).unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(kept, ["e", "e2"], "the Anthropic fallback and the one outside the plan are not tried");
        let err = super::routes(chain("claude"), plan).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("model")));
        assert!(err.message.contains("anthropic"), "{}", err.message);
    }

    #[test]
    fn the_upstream_usage_is_read_from_the_answer() {
        let answer = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],
            "model":"m","usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        assert_eq!(reported_prompt_tokens(answer), Ok(Some(7)));
        assert_eq!(reported_prompt_tokens(br#"{"data":[],"usage":{"total_tokens":3}}"#), Ok(Some(3)));
        assert_eq!(reported_prompt_tokens(br#"{"data":[{"embedding":"AAAA"}]}"#), Ok(None));
        assert_eq!(reported_prompt_tokens(br#"{"data":[],"usage":{"prompt_tokens":0}}"#), Ok(None));
        assert_eq!(reported_prompt_tokens(br#"{"data":[],"usage":null}"#), Ok(None));
        assert!(reported_prompt_tokens(br#"{"error":{"message":"x"}}"#).is_err());
        assert!(reported_prompt_tokens(b"not json").is_err());
    }
}
