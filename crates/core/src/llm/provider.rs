//! The upstream providers: which one a route names, and one entry point per job (build the
//! request, decode a stream, decode a whole answer, word an error) that dispatches to the
//! provider's wire-format module.

use super::sse::{SseEvent, SseParser};
use super::{anthropic, clean_message, json_object, openai, workers_ai};
use super::{ChatMessage, Completion, StreamEvent, ToolChoice, ToolDef, Usage};
use serde_json::value::RawValue;
use serde_json::Value;

/// An upstream API family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI Chat Completions and compatible APIs.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Cloudflare Workers AI through the `AI` binding.
    WorkersAi,
}

impl Provider {
    /// `"openai"`, `"anthropic"` or `"workers-ai"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "workers-ai" => Some(Self::WorkersAi),
            _ => None,
        }
    }

    /// The name [`Provider::parse`] accepts.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::WorkersAi => "workers-ai",
        }
    }
}

/// What to ask the upstream.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// The upstream's model id.
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub max_tokens: Option<u32>,
    /// As the client wrote it (a JSON number).
    pub temperature: Option<&'a RawValue>,
    pub stream: bool,
    /// The tools offered; when empty no `tools` member is sent at all (nor `tool_choice`,
    /// which the providers refuse without tools).
    pub tools: &'a [ToolDef<'a>],
    /// Whether and which tools the model must call (sent only with tools).
    pub tool_choice: ToolChoice<'a>,
}

/// A provider request, ready to send.
///
/// For HTTP providers the edge POSTs `body` with `headers` to the provider's base URL followed
/// by `path`. For [`Provider::WorkersAi`] `path` is the model id, `headers` is empty and the
/// edge passes the parsed `body` to `env.AI.run(model, body)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The request for `req` in the provider's wire format; `api_key` is sent only when given.
pub fn build_request(provider: Provider, api_key: Option<&str>, req: &ChatRequest) -> UpstreamRequest {
    match provider {
        Provider::OpenAi => openai::build(api_key, req),
        Provider::Anthropic => anthropic::build(api_key, req),
        Provider::WorkersAi => workers_ai::build(req),
    }
}

/// An Anthropic Messages request whose body is already written (a Messages client's own).
pub fn anthropic_request(api_key: Option<&str>, body: String) -> UpstreamRequest {
    anthropic::request(api_key, body)
}

/// Turns a provider's SSE response, fed in pieces split anywhere, into [`StreamEvent`]s.
#[derive(Debug)]
pub struct StreamDecoder {
    provider: Provider,
    sse: SseParser,
    usage: Option<Usage>,
}

impl StreamDecoder {
    /// A decoder for one stream from `provider`.
    pub fn new(provider: Provider) -> Self {
        Self { provider, sse: SseParser::new(), usage: None }
    }

    /// Decodes the events that `bytes` complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let events = self.sse.feed(bytes);
        self.decode(&events)
    }

    /// Ends the stream; an unterminated last event is dropped, as browsers drop it.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let events = self.sse.finish();
        self.decode(&events)
    }

    /// The usage seen so far, merged over every report (Anthropic sends input and output
    /// tokens in different events).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn decode(&mut self, events: &[SseEvent]) -> Vec<StreamEvent> {
        let mut sink = Sink { events: Vec::new(), usage: self.usage };
        for event in events {
            match self.provider {
                Provider::OpenAi => openai::decode_event(event, &mut sink),
                Provider::Anthropic => anthropic::decode_event(event, &mut sink),
                Provider::WorkersAi => workers_ai::decode_event(event, &mut sink),
            }
        }
        self.usage = sink.usage;
        sink.events
    }
}

/// Where a provider's event decoder puts what it found.
pub(super) struct Sink {
    events: Vec<StreamEvent>,
    usage: Option<Usage>,
}

impl Sink {
    pub(super) fn push(&mut self, event: StreamEvent) {
        self.events.push(event);
    }

    /// An in-stream error, its message cleaned like [`upstream_error_message`]'s.
    pub(super) fn error(&mut self, message: Option<&str>) {
        let message = message.and_then(clean_message);
        let message = message.unwrap_or_else(|| "upstream reported an error".to_owned());
        self.events.push(StreamEvent::Error(message));
    }

    /// Merges the counts that were reported into the usage so far and emits the result.
    pub(super) fn usage(&mut self, prompt: Option<u64>, completion: Option<u64>) {
        if prompt.is_none() && completion.is_none() {
            return;
        }
        let mut usage = self.usage.unwrap_or_default();
        usage.prompt_tokens = prompt.unwrap_or(usage.prompt_tokens);
        usage.completion_tokens = completion.unwrap_or(usage.completion_tokens);
        self.usage = Some(usage);
        self.events.push(StreamEvent::Usage(usage));
    }
}

/// Decodes a non-streamed JSON answer; `Err` carries a short, safe reason.
pub fn decode_completion(provider: Provider, body: &[u8]) -> Result<Completion, String> {
    const NOT_AN_ANSWER: &str = "upstream answer is not a JSON object of the expected shape";
    let decoded = match provider {
        Provider::OpenAi => openai::decode_completion(json_object(body).ok_or(NOT_AN_ANSWER)?),
        Provider::Anthropic => anthropic::decode_completion(json_object(body).ok_or(NOT_AN_ANSWER)?),
        Provider::WorkersAi => workers_ai::decode_completion(json_object(body).ok_or(NOT_AN_ANSWER)?),
    };
    decoded.map_err(|message| clean_message(&message).unwrap_or_else(|| "upstream error".into()))
}

/// A short message for a failed upstream call: the provider's own error message when the body
/// has one (cleaned, at most 300 characters), else `upstream returned HTTP {status}`.
pub fn upstream_error_message(provider: Provider, status: u16, body: &[u8]) -> String {
    json_object::<Value>(body)
        .and_then(|value| {
            let message = match provider {
                Provider::OpenAi | Provider::Anthropic => super::error_message(&value),
                Provider::WorkersAi => workers_ai::rest_error_message(&value),
            };
            message.and_then(clean_message)
        })
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Accumulator;
    use crate::llm::ToolCall;

    const OPENAI_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/openai_stream.sse");
    const OPENAI_MALFORMED: &[u8] = include_bytes!("../../tests/fixtures/llm/openai_malformed.sse");
    const OPENAI_COMPLETION: &[u8] = include_bytes!("../../tests/fixtures/llm/openai_completion.json");
    const ANTHROPIC_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/anthropic_stream.sse");
    const ANTHROPIC_MESSAGE: &[u8] = include_bytes!("../../tests/fixtures/llm/anthropic_message.json");
    const WORKERS_AI_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/workers_ai_stream.sse");
    const OPENAI_TOOL_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/openai_tool_stream.sse");
    const OPENAI_REASONING_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/openai_reasoning_stream.sse");
    const ANTHROPIC_TOOL_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/anthropic_tool_stream.sse");
    /// The simulator's answer to two `/tool` lines (add_task, recall), for each provider.
    const OPENAI_TOOL_CALLS_STREAM: &[u8] = include_bytes!("../../tests/fixtures/llm/openai_tool_calls_stream.sse");
    const ANTHROPIC_TOOL_CALLS_STREAM: &[u8] =
        include_bytes!("../../tests/fixtures/llm/anthropic_tool_calls_stream.sse");

    /// What the simulator answers to "hello" with 12 tokens, streamed or not.
    const SIM_TEXT: &str = "is next right large eye be so we after begin house near";
    const SIM_USAGE: Usage = Usage { prompt_tokens: 2, completion_tokens: 12 };

    /// Everything a stream decoded to, in a form that compares across splits.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        text: String,
        /// The other output, each piece followed by `|`.
        other: String,
        last_usage: Option<Usage>,
        finishes: Vec<String>,
        errors: Vec<String>,
        malformed: usize,
        done: usize,
        /// The tool calls the chat accumulator assembled from the events.
        calls: Vec<ToolCall>,
        /// The accumulator's estimate of the output tokens.
        output_estimate: u64,
    }

    fn decode_pieces(provider: Provider, pieces: &[&[u8]]) -> Outcome {
        let mut decoder = StreamDecoder::new(provider);
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(decoder.feed(piece));
        }
        events.extend(decoder.finish());
        let mut acc = Accumulator::default();
        for event in &events {
            acc.apply(event.clone());
        }
        let mut outcome = Outcome {
            text: String::new(),
            other: String::new(),
            last_usage: None,
            finishes: Vec::new(),
            errors: Vec::new(),
            malformed: 0,
            done: 0,
            calls: acc.tool_calls().to_vec(),
            output_estimate: acc.output_estimate(),
        };
        for event in events {
            match event {
                StreamEvent::Delta(text) => outcome.text.push_str(&text),
                StreamEvent::OtherOutput(other) => {
                    outcome.other.push_str(&other);
                    outcome.other.push('|');
                }
                StreamEvent::Usage(usage) => outcome.last_usage = Some(usage),
                StreamEvent::Finish(reason) => outcome.finishes.push(reason),
                StreamEvent::Error(message) => outcome.errors.push(message),
                StreamEvent::Malformed => outcome.malformed += 1,
                StreamEvent::Done => outcome.done += 1,
                StreamEvent::ToolCall(_) => {}
            }
        }
        assert_eq!(decoder.usage(), outcome.last_usage, "the decoder's usage is the last one emitted");
        outcome
    }

    /// The fixture with CRLF and with CR line ends instead of LF.
    fn line_end_variants(lf: &[u8]) -> [Vec<u8>; 3] {
        let replace =
            |end: &[u8]| lf.iter().flat_map(|&b| if b == b'\n' { end.to_vec() } else { vec![b] }).collect::<Vec<u8>>();
        [lf.to_vec(), replace(b"\r\n"), replace(b"\r")]
    }

    /// Decodes `fixture` whole, in every two-piece split and byte by byte, with LF, CRLF and
    /// CR line ends, asserts that all agree and returns the common outcome.
    fn decode_every_way(provider: Provider, fixture: &[u8]) -> Outcome {
        let whole = decode_pieces(provider, &[fixture]);
        for variant in line_end_variants(fixture) {
            assert_eq!(decode_pieces(provider, &[&variant]), whole);
            for at in 0..=variant.len() {
                let (a, b) = variant.split_at(at);
                assert_eq!(decode_pieces(provider, &[a, b]), whole, "split at byte {at}");
            }
            let bytes: Vec<&[u8]> = variant.chunks(1).collect();
            assert_eq!(decode_pieces(provider, &bytes), whole, "byte by byte");
        }
        whole
    }

    #[test]
    fn the_openai_stream_decodes_identically_however_it_is_split() {
        let outcome = decode_every_way(Provider::OpenAi, OPENAI_STREAM);
        assert_eq!(outcome.text, SIM_TEXT);
        assert_eq!(outcome.last_usage, Some(SIM_USAGE));
        assert_eq!(outcome.finishes, ["stop"]);
        assert_eq!((outcome.done, outcome.malformed), (1, 0));
        assert!(outcome.errors.is_empty());
    }

    #[test]
    fn the_anthropic_stream_decodes_identically_however_it_is_split() {
        let outcome = decode_every_way(Provider::Anthropic, ANTHROPIC_STREAM);
        assert_eq!(outcome.text, SIM_TEXT);
        assert_eq!(outcome.last_usage, Some(SIM_USAGE), "input from message_start, output from message_delta");
        assert_eq!(outcome.finishes, ["end_turn"]);
        assert_eq!((outcome.done, outcome.malformed), (1, 0));
    }

    #[test]
    fn the_workers_ai_stream_decodes_identically_however_it_is_split() {
        let outcome = decode_every_way(Provider::WorkersAi, WORKERS_AI_STREAM);
        assert_eq!(outcome.text, "Hello, wörld 👋");
        assert_eq!(outcome.last_usage, Some(Usage { prompt_tokens: 12, completion_tokens: 6 }));
        assert!(outcome.finishes.is_empty());
        assert_eq!((outcome.done, outcome.malformed), (1, 0));
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }
    }

    #[test]
    fn openai_tool_calls_assemble_and_count_however_the_stream_is_split() {
        let outcome = decode_every_way(Provider::OpenAi, OPENAI_TOOL_STREAM);
        assert_eq!(
            (outcome.text.as_str(), outcome.other.as_str()),
            ("", ""),
            "a call is neither text nor other output"
        );
        assert_eq!(
            outcome.calls,
            [call("call_eeJTba4jE5ZnNzA9E8o3PlpL", "get_weather", r#"{"city":"went ask","days":15}"#)]
        );
        // get_weather and its arguments, counted once: 11 + 29 characters.
        assert_eq!(outcome.output_estimate, 10);
        assert_eq!(outcome.finishes, ["tool_calls"]);
        assert_eq!(outcome.last_usage, Some(Usage { prompt_tokens: 2, completion_tokens: 4 }));
    }

    /// The calls in the simulator's answer to `/tool add_task {..}` and `/tool recall {..}`.
    fn sim_calls(first_id: &str, second_id: &str) -> [ToolCall; 2] {
        [
            call(first_id, "add_task", r#"{"title":"buy milk","notes":"café \"2%\""}"#),
            call(second_id, "recall", r#"{"query":"tea"}"#),
        ]
    }

    #[test]
    fn several_openai_tool_calls_in_one_answer_assemble_however_the_stream_is_split() {
        let outcome = decode_every_way(Provider::OpenAi, OPENAI_TOOL_CALLS_STREAM);
        assert_eq!(outcome.calls, sim_calls("call_wLMVlca03omuY9Hdv39HhUDR", "call_1tJ0oZPxTBN9krHVXBNUi0ql"));
        assert_eq!((outcome.text.as_str(), outcome.finishes.as_slice()), ("", &["tool_calls".to_owned()][..]));
        assert_eq!((outcome.last_usage, outcome.done), (Some(Usage { prompt_tokens: 22, completion_tokens: 8 }), 1));
    }

    #[test]
    fn several_anthropic_tool_calls_in_one_answer_assemble_however_the_stream_is_split() {
        let outcome = decode_every_way(Provider::Anthropic, ANTHROPIC_TOOL_CALLS_STREAM);
        assert_eq!(outcome.calls, sim_calls("toolu_01ni0Q0GnXL3BGlgBeZkQjsI", "toolu_01OnzHMzyy5TyXOnhFkbzWfR"));
        assert_eq!((outcome.text.as_str(), outcome.finishes.as_slice()), ("", &["tool_use".to_owned()][..]));
        assert_eq!((outcome.last_usage, outcome.done), (Some(Usage { prompt_tokens: 22, completion_tokens: 8 }), 1));
        let openai = decode_pieces(Provider::OpenAi, &[OPENAI_TOOL_CALLS_STREAM]);
        assert_eq!(outcome.output_estimate, openai.output_estimate, "the same calls count the same");
    }

    #[test]
    fn openai_reasoning_is_other_output_however_the_stream_is_split() {
        let outcome = decode_every_way(Provider::OpenAi, OPENAI_REASONING_STREAM);
        assert_eq!(outcome.text, "4");
        assert_eq!(outcome.other, "Two and| two.|Four.|");
        assert_eq!((outcome.last_usage, outcome.done), (None, 1));
    }

    #[test]
    fn anthropic_tool_calls_assemble_and_thinking_is_other_output_however_the_stream_is_split() {
        let outcome = decode_every_way(Provider::Anthropic, ANTHROPIC_TOOL_STREAM);
        assert_eq!(outcome.text, "");
        assert_eq!(outcome.other, "Ask the tool.|");
        assert_eq!(outcome.calls, [call("toolu_1", "get_weather", r#"{"city": "Paris"}"#)]);
        // Ask the tool. + get_weather + {"city": "Paris"}: 13 + 11 + 17 characters.
        assert_eq!(outcome.output_estimate, 11);
        assert_eq!(outcome.finishes, ["tool_use"]);
        assert_eq!(outcome.last_usage, Some(Usage { prompt_tokens: 30, completion_tokens: 40 }));
        assert_eq!((outcome.done, outcome.malformed), (1, 0));
    }

    #[test]
    fn whole_answers_count_tool_calls_and_thinking() {
        let fixture: &[u8] = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}],"reasoning_content":"Ask."},"finish_reason":"tool_calls"}]}"#;
        let decoded = decode_completion(Provider::OpenAi, fixture).unwrap();
        assert_eq!(decoded.tool_calls, [call("call_1", "get_weather", r#"{"city":"Paris"}"#)]);
        // "Ask." + "get_weather" + {"city":"Paris"}: 4 + 11 + 16 characters.
        assert_eq!((decoded.text.as_str(), decoded.other_output_chars, decoded.usage), ("", 31, None));
        assert_eq!(decoded.estimated_output_tokens(), 8);
        let anthropic: &[u8] = br#"{"content":[{"type":"thinking","thinking":"Ask.","signature":"x"},{"type":"text","text":"ok"},{"type":"tool_use","id":"t","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use"}"#;
        let decoded = decode_completion(Provider::Anthropic, anthropic).unwrap();
        assert_eq!((decoded.text.as_str(), decoded.other_output_chars), ("ok", 31));
        assert_eq!(decoded.tool_calls, [call("t", "get_weather", r#"{"city":"Paris"}"#)]);
        let legacy: &[u8] =
            br#"{"choices":[{"message":{"content":null,"function_call":{"name":"f","arguments":{"a":1}}}}]}"#;
        assert_eq!(decode_completion(Provider::OpenAi, legacy).unwrap().other_output_chars, 8);
    }

    #[test]
    fn a_malformed_event_is_counted_once_and_the_rest_of_the_text_survives() {
        let outcome = decode_every_way(Provider::OpenAi, OPENAI_MALFORMED);
        assert_eq!(outcome.malformed, 1);
        // The simulator truncated the third event, the " next" token.
        assert_eq!(outcome.text, SIM_TEXT.replacen(" next", "", 1));
        assert_eq!(outcome.last_usage, Some(SIM_USAGE));
        assert_eq!((outcome.finishes.len(), outcome.done), (1, 1));
    }

    #[test]
    fn streamed_and_whole_answers_agree() {
        let expected = Completion {
            text: SIM_TEXT.into(),
            tool_calls: Vec::new(),
            other_output_chars: 0,
            usage: Some(SIM_USAGE),
            finish_reason: Some("stop".into()),
        };
        assert_eq!(decode_completion(Provider::OpenAi, OPENAI_COMPLETION), Ok(expected.clone()));
        let expected = Completion { finish_reason: Some("end_turn".into()), ..expected };
        assert_eq!(decode_completion(Provider::Anthropic, ANTHROPIC_MESSAGE), Ok(expected));
    }

    #[test]
    fn in_stream_errors_become_error_events() {
        let openai = decode_pieces(
            Provider::OpenAi,
            &[b"data: {\"error\":{\"message\":\"quota exceeded\",\"type\":\"x\"}}\n\n"],
        );
        assert_eq!(openai.errors, ["quota exceeded"]);
        let anthropic = decode_pieces(
            Provider::Anthropic,
            &[b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"],
        );
        assert_eq!(anthropic.errors, ["Overloaded"]);
        let bare = decode_pieces(
            Provider::WorkersAi,
            &[b"data: {\"error\":{\"message\":\"two\\nlines\"}}\n\ndata: {\"error\":{}}\n\n"],
        );
        assert_eq!(bare.errors, ["two lines", "upstream reported an error"]);
    }

    #[test]
    fn anthropic_events_fall_back_to_the_data_type_and_skip_pings_and_unknown_events() {
        let stream =
            b"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n\
            event: ping\ndata: not json\n\n\
            event: something_new\ndata: {}\n\n\
            event: content_block_delta\ndata: {\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n\
            data: {\"type\":\"message_stop\"}\n\n";
        let outcome = decode_pieces(Provider::Anthropic, &[stream]);
        assert_eq!(outcome.text, "hi");
        assert_eq!((outcome.done, outcome.malformed), (1, 0));
    }

    #[test]
    fn role_only_and_empty_openai_deltas_add_no_text() {
        let stream =
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}}]}\n\n\
            data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":null}}],\"usage\":null,\"error\":null}\n\n";
        let mut decoder = StreamDecoder::new(Provider::OpenAi);
        assert_eq!(decoder.feed(stream), []);
        assert_eq!(decoder.usage(), None);
    }

    #[test]
    fn non_object_json_data_is_malformed() {
        let outcome = decode_pieces(Provider::WorkersAi, &[b"data: 42\n\ndata: {\"response\":\"ok\"}\n\n"]);
        assert_eq!((outcome.malformed, outcome.text.as_str()), (1, "ok"));
    }

    #[test]
    fn json_arrays_are_malformed_even_where_they_would_fill_a_struct() {
        for provider in [Provider::OpenAi, Provider::Anthropic, Provider::WorkersAi] {
            let outcome = decode_pieces(provider, &[b"data: [null,null,null]\n\ndata: []\n\n"]);
            assert_eq!(outcome.malformed, 2, "{provider:?}");
            assert!(decode_completion(provider, b"[null,null,null,null,null]").is_err(), "{provider:?}");
        }
    }

    #[test]
    fn escaped_text_and_unknown_members_decode() {
        let openai = decode_pieces(
            Provider::OpenAi,
            &[b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"caf\\u00e9 \\\"a\\/b\\\"\"},\"logprobs\":{\"x\":[1]}}],\"new\":{}}\n\n"],
        );
        assert_eq!(openai.text, "caf\u{e9} \"a/b\"");
        let anthropic = decode_pieces(
            Provider::Anthropic,
            &[b"event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":7,\"cache_read_input_tokens\":0}}\n\n"],
        );
        assert_eq!(
            (anthropic.finishes, anthropic.last_usage),
            (vec!["max_tokens".to_owned()], Some(Usage { prompt_tokens: 0, completion_tokens: 7 }))
        );
    }

    #[test]
    fn workers_ai_answers_come_bare_or_wrapped_in_result() {
        let bare = br#"{"response":"hi","usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let wrapped =
            br#"{"result":{"response":"hi","usage":{"prompt_tokens":3,"completion_tokens":1}},"success":true}"#;
        let expected = Completion {
            text: "hi".into(),
            tool_calls: Vec::new(),
            other_output_chars: 0,
            usage: Some(Usage { prompt_tokens: 3, completion_tokens: 1 }),
            finish_reason: None,
        };
        assert_eq!(decode_completion(Provider::WorkersAi, bare), Ok(expected.clone()));
        assert_eq!(decode_completion(Provider::WorkersAi, wrapped), Ok(expected));
    }

    #[test]
    fn whole_answers_that_are_errors_or_garbage_are_err() {
        assert_eq!(decode_completion(Provider::OpenAi, br#"{"error":{"message":"bad key"}}"#), Err("bad key".into()));
        assert!(decode_completion(Provider::OpenAi, br#"{"choices":[]}"#).is_err());
        assert!(decode_completion(Provider::Anthropic, br#"{"type":"error","error":{"message":"no"}}"#).is_err());
        assert!(decode_completion(Provider::WorkersAi, br#"{"result":{}}"#).is_err());
        assert!(decode_completion(Provider::Anthropic, b"<html>").is_err());
    }

    #[test]
    fn upstream_errors_use_the_providers_message_when_there_is_one() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(upstream_error_message(Provider::OpenAi, 429, openai), "Rate limit reached");
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":null}"#;
        assert_eq!(upstream_error_message(Provider::Anthropic, 529, anthropic), "Overloaded");
        let workers =
            br#"{"success":false,"errors":[{"code":5006,"message":"Capacity temporarily exceeded"}],"result":null}"#;
        assert_eq!(upstream_error_message(Provider::WorkersAi, 429, workers), "Capacity temporarily exceeded");
        assert_eq!(
            upstream_error_message(Provider::OpenAi, 502, b"<html>bad gateway</html>"),
            "upstream returned HTTP 502"
        );
        assert_eq!(
            upstream_error_message(Provider::OpenAi, 500, br#"{"error":{"message":" "}}"#),
            "upstream returned HTTP 500"
        );
    }

    #[test]
    fn upstream_error_messages_are_short_and_single_line() {
        let long = format!(r#"{{"error":{{"message":"line one\nline two {}"}}}}"#, "é".repeat(500));
        let message = upstream_error_message(Provider::OpenAi, 400, long.as_bytes());
        assert_eq!(message.chars().count(), 300);
        assert!(message.starts_with("line one line two é"));
    }

    #[test]
    fn provider_names_round_trip() {
        for provider in [Provider::OpenAi, Provider::Anthropic, Provider::WorkersAi] {
            assert_eq!(Provider::parse(provider.as_str()), Some(provider));
        }
        assert_eq!(Provider::parse("OpenAI"), None);
        assert_eq!(Provider::parse(""), None);
    }
}
