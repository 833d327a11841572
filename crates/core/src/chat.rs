//! The chat turn: request bodies, the retry policy, the accumulator that turns upstream
//! stream events into the stored answer, its final status and what it is billed, and
//! automatic titles.

use crate::conversations::MessageView;
use crate::llm::context::{estimate_chars, estimate_tokens};
use crate::llm::{StreamEvent, ToolCall, ToolCallDelta, Usage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct PostMessage {
    pub content: String,
    pub model: Option<String>,
    /// The message this one answers: absent means after the conversation's latest message, an
    /// earlier id starts a new branch below it (edit and resend), and `null` starts a new root
    /// branch (the first question edited). Outer `None` is absent, `Some(None)` is `null`.
    #[serde(default, deserialize_with = "present")]
    pub parent_id: Option<Option<String>>,
}

impl PostMessage {
    /// The parent id named in the body, if one is.
    pub fn named_parent(&self) -> Option<&str> {
        self.parent_id.as_ref().and_then(|p| p.as_deref())
    }

    /// True when the body asks for a new root branch (`"parent_id": null`).
    pub fn new_root(&self) -> bool {
        matches!(self.parent_id, Some(None))
    }
}

/// A member that is present (possibly `null`): with `#[serde(default)]`, absence stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Regenerate {
    pub model: Option<String>,
}

/// The first event of a streamed turn (`message`).
#[derive(Debug, Serialize)]
pub struct TurnStarted<'a> {
    pub user_message: MessageView<'a>,
    pub assistant_message_id: &'a str,
    /// Where the turn is read again, with a token that lets a reader without headers (the
    /// browser's `EventSource`) read this turn and nothing else.
    pub stream_url: &'a str,
}

/// The JSON answer of a turn that was not streamed.
#[derive(Debug, Serialize)]
pub struct TurnAnswer<'a> {
    pub user_message: MessageView<'a>,
    pub assistant_message: MessageView<'a>,
}

/// A piece of the answer (`delta`).
#[derive(Debug, Serialize)]
pub struct Delta<'a> {
    pub text: &'a str,
}

/// The stored answer at the end of a turn (`done`).
#[derive(Debug, Serialize)]
pub struct TurnDone<'a> {
    pub assistant_message: MessageView<'a>,
}

/// A failed turn (`error`): the error and, when the partial answer is stored, that message.
#[derive(Debug, Serialize)]
pub struct TurnFailed<'a> {
    pub error: EventError<'a>,
    /// The partial answer as stored (or `null`) when the turn failed; left out when the turn
    /// succeeded but its stored answer could not be read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assistant_message: Option<Option<MessageView<'a>>>,
}

#[derive(Debug, Serialize)]
pub struct EventError<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// Retries before the first byte, per model in the fallback chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base_delay_ms: u64,
    /// Longest wait honoured, whatever `Retry-After` asks for.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { retries: 2, base_delay_ms: 250, max_delay_ms: 5_000 }
    }
}

/// Upstream statuses worth another try: rate limits and server-side failures.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// Wait before retry number `attempt` (0-based): `Retry-After` seconds when given, else
/// exponential backoff; never above the policy's cap.
pub fn retry_delay_ms(attempt: u32, retry_after: Option<&str>, policy: &RetryPolicy) -> u64 {
    let delay = match retry_after.and_then(seconds_as_ms) {
        Some(ms) => ms,
        None => policy.base_delay_ms.saturating_mul(1u64 << attempt.min(16)),
    };
    delay.min(policy.max_delay_ms)
}

/// `Retry-After` seconds (`12`, or `0.5` as some providers send) in milliseconds; `None` for
/// anything else. Read digit by digit, without floating point: exact to the millisecond.
fn seconds_as_ms(value: &str) -> Option<u64> {
    let (whole, fraction) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    if whole.len() + fraction.len() == 0 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Past about 584 million years the delay saturates (the cap applies anyway).
    let seconds = whole.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0')));
    let millis = fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |n, b| n * 10 + u64::from(b - b'0'));
    Some(seconds.saturating_mul(1000).saturating_add(millis))
}

/// How a turn ended, as stored in the assistant message's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Complete,
    /// The client went away (or stopped); the partial answer is kept.
    Cancelled,
    /// The upstream failed after output started, or never answered; partial text is kept.
    Error,
}

impl FinalStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }
}

/// How a call ended, as its usage record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettledStatus {
    Complete,
    /// The client left (or stopped the turn).
    Cancelled,
    /// The stream broke off or stalled after its first output.
    Cut,
    /// The upstream reported an error, or failed before any output.
    Error,
    /// A whole answer over the size limit: nothing of it is known.
    TooLarge,
    /// A whole answer that is not an answer of the provider's format.
    Undecodable,
}

impl SettledStatus {
    /// The usage record's `status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
            Self::Cut => "cut",
            Self::Error => "error",
            Self::TooLarge => "too_large",
            Self::Undecodable => "undecodable",
        }
    }
}

/// What a call is billed and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub status: SettledStatus,
    pub usage: Usage,
    /// Some count is an estimate (the upstream reported none).
    pub estimated: bool,
}

impl Settlement {
    /// A call of which no output was counted: the client left first (`Cancelled`), the
    /// upstream failed (`Error`), or its whole answer is unknown (`TooLarge`, `Undecodable`).
    pub fn nothing(status: SettledStatus) -> Self {
        Self { status, usage: Usage::default(), estimated: false }
    }

    /// A whole answer, complete.
    pub fn complete(usage: Usage, estimated: bool) -> Self {
        Self { status: SettledStatus::Complete, usage, estimated }
    }

    /// What the call is charged, given the tokens admission `reserved` and the prompt's
    /// estimate: an answer of which nothing is known (`TooLarge`, `Undecodable`) is charged
    /// the reservation, a client that left before anything was counted the prompt, any
    /// other call what was counted. The result's usage is what the record says and the
    /// limits are settled with.
    /// A call whose running turn was lost with the object running it (evicted or restarted)
    /// after `text` had been sent: billed for the prompt and that text, estimated (the
    /// upstream's own count never arrived).
    pub fn interrupted(text: &str, prompt_estimate: u64) -> Self {
        let acc = Accumulator { text: text.to_owned(), ..Accumulator::default() };
        let settled = acc.settle(prompt_estimate, false, true);
        let usage = Usage { prompt_tokens: prompt_estimate, completion_tokens: settled.usage.completion_tokens };
        Self { usage, estimated: true, ..settled }
    }

    pub fn charged(self, reserved: u64, prompt_estimate: u64) -> Self {
        let usage = match self.status {
            SettledStatus::TooLarge | SettledStatus::Undecodable => {
                Usage { prompt_tokens: prompt_estimate, completion_tokens: reserved.saturating_sub(prompt_estimate) }
            }
            SettledStatus::Cancelled if self.usage.total() == 0 => {
                Usage { prompt_tokens: prompt_estimate, completion_tokens: 0 }
            }
            _ => return self,
        };
        Self { usage, estimated: true, ..self }
    }
}

/// Collects one upstream stream: the answer text, the tool calls, the size of the other
/// output, usage, and whether it ended properly.
#[derive(Debug, Default)]
pub struct Accumulator {
    pub text: String,
    /// The tool calls assembled so far, in the order of their index.
    tool_calls: Vec<ToolCall>,
    /// Each call's index, and whether its id came from the upstream (else it is generated).
    call_slots: Vec<(usize, bool)>,
    /// Characters of billed output that is not answer text (tool calls, reasoning).
    other_output_chars: u64,
    usage: Option<Usage>,
    /// The upstream said it was done (`[DONE]`, `message_stop`) or gave a finish reason.
    pub finished: bool,
    pub upstream_error: Option<String>,
    pub malformed: u32,
}

impl Accumulator {
    /// Applies one event; returns the text to forward to the client, if any.
    pub fn apply(&mut self, event: StreamEvent) -> Option<String> {
        match event {
            StreamEvent::Delta(text) => {
                self.text.push_str(&text);
                return Some(text);
            }
            StreamEvent::OtherOutput(other) => self.other_output_chars += other.chars().count() as u64,
            StreamEvent::ToolCall(delta) => self.add_call_fragment(delta),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Finish(_) | StreamEvent::Done => self.finished = true,
            StreamEvent::Error(message) => self.upstream_error = Some(message),
            StreamEvent::Malformed => self.malformed += 1,
        }
        None
    }

    /// The tool calls of the answer, in the order of their index. A call whose id never came
    /// has the id `call_<index>`; one whose name never came has an empty name (for the caller
    /// to answer with a tool error).
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.tool_calls
    }

    /// Adds a fragment to its call (a new one for a new index): the id and name where the
    /// call has none yet, the arguments appended. Its characters count as other output.
    fn add_call_fragment(&mut self, delta: ToolCallDelta) {
        let ToolCallDelta { index, id, name, arguments } = delta;
        let counted = [name.as_deref(), Some(arguments.as_str())].into_iter().flatten();
        self.other_output_chars += counted.map(|t| t.chars().count() as u64).sum::<u64>();
        let at = match self.call_slots.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => at,
            Err(at) => {
                let call = ToolCall { id: format!("call_{index}"), name: String::new(), arguments: String::new() };
                self.tool_calls.insert(at, call);
                self.call_slots.insert(at, (index, false));
                at
            }
        };
        let (Some(call), Some((_, has_id))) = (self.tool_calls.get_mut(at), self.call_slots.get_mut(at)) else {
            return;
        };
        if let Some(id) = id.filter(|id| !id.is_empty() && !*has_id) {
            call.id = id;
            *has_id = true;
        }
        if let Some(name) = name.filter(|_| call.name.is_empty()) {
            call.name = name;
        }
        call.arguments.push_str(&arguments);
    }

    /// The status once the upstream stream has ended (cleanly or not).
    pub fn status(&self) -> FinalStatus {
        if self.upstream_error.is_none() && self.finished {
            FinalStatus::Complete
        } else {
            FinalStatus::Error
        }
    }

    /// Estimated tokens of the output received: the answer text and the other output.
    pub fn output_estimate(&self) -> u64 {
        u64::from(estimate_tokens(&self.text)) + estimate_chars(self.other_output_chars)
    }

    /// Usage to store: each count as the upstream reported it, or else estimated (and then
    /// flagged): the prompt by `prompt_estimate`, the output by what was received. A stream
    /// that ended early keeps what the upstream had reported (Anthropic's input tokens come
    /// first) and estimates the rest, so it is never free.
    pub fn final_usage(&self, prompt_estimate: u64) -> (Usage, bool) {
        let estimate = Usage { prompt_tokens: prompt_estimate, completion_tokens: self.output_estimate() };
        let (mut usage, mut estimated) = Usage::reported_or(self.usage, estimate);
        // Before its end a stream's reported output is partial (Anthropic's `message_start`
        // says 1): what arrived counts when it is more.
        if !self.finished && estimate.completion_tokens > usage.completion_tokens {
            usage.completion_tokens = estimate.completion_tokens;
            estimated = true;
        }
        (usage, estimated)
    }

    /// Nothing of an answer arrived: no text, no other output, no usage.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.other_output_chars == 0 && self.usage.is_none()
    }

    /// How a stream from a model that answered is billed: `gone` when the client left, `failed`
    /// when the stream broke off, stalled or reported an error.
    ///
    /// A client leaving pays for what arrived and at least the prompt; a stream cut after its
    /// first output pays the same (`cut`); an upstream that failed before any output is billed
    /// like a connection that failed: nothing.
    pub fn settle(&self, prompt_estimate: u64, gone: bool, failed: bool) -> Settlement {
        let status = if gone {
            SettledStatus::Cancelled
        } else if !failed {
            SettledStatus::Complete
        } else if self.upstream_error.is_some() || self.is_empty() {
            SettledStatus::Error
        } else {
            SettledStatus::Cut
        };
        if status == SettledStatus::Error && self.is_empty() {
            return Settlement { status, usage: Usage::default(), estimated: false };
        }
        let (usage, estimated) = self.final_usage(prompt_estimate);
        Settlement { status, usage, estimated }
    }
}

/// Longest automatic title, in characters.
pub const AUTO_TITLE_CHARS: usize = 60;

/// A title from the first user message: its first line, whitespace collapsed, cut at a word
/// boundary with an ellipsis when longer than [`AUTO_TITLE_CHARS`].
pub fn derive_title(first_message: &str) -> String {
    let line = first_message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let collapsed: Vec<&str> = line.split_whitespace().collect();
    let mut title = String::new();
    for word in collapsed {
        let extra = usize::from(!title.is_empty()) + word.chars().count();
        if title.chars().count() + extra > AUTO_TITLE_CHARS {
            if title.is_empty() {
                title = word.chars().take(AUTO_TITLE_CHARS - 1).collect();
            }
            title.push('…');
            return title;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::parse_json;

    #[test]
    fn post_message_rejects_unknown_fields() {
        let ok: PostMessage = parse_json(Some("application/json"), br#"{"content":"hi","parent_id":"msg_x"}"#).unwrap();
        assert_eq!(ok.named_parent(), Some("msg_x"));
        assert!(!ok.new_root());
        let root: PostMessage = parse_json(Some("application/json"), br#"{"content":"hi","parent_id":null}"#).unwrap();
        assert!(root.new_root() && root.named_parent().is_none());
        let latest: PostMessage = parse_json(Some("application/json"), br#"{"content":"hi"}"#).unwrap();
        assert!(!latest.new_root() && latest.parent_id.is_none());
        let wrong = parse_json::<PostMessage>(Some("application/json"), br#"{"content":"hi","parent_id":7}"#);
        assert_eq!(wrong.unwrap_err().status, 422);
        let bad = parse_json::<PostMessage>(Some("application/json"), br#"{"content":"hi","role":"assistant"}"#);
        assert_eq!(bad.unwrap_err().status, 422);
    }

    #[test]
    fn a_failed_turn_event_shows_the_stored_answer_or_null_or_nothing() {
        let error = || EventError { code: "upstream_error", message: "broke off" };
        assert_eq!(
            serde_json::to_string(&TurnFailed { error: error(), assistant_message: Some(None) }).unwrap(),
            r#"{"error":{"code":"upstream_error","message":"broke off"},"assistant_message":null}"#
        );
        assert_eq!(
            serde_json::to_string(&TurnFailed { error: error(), assistant_message: None }).unwrap(),
            r#"{"error":{"code":"upstream_error","message":"broke off"}}"#
        );
        assert_eq!(serde_json::to_string(&Delta { text: "a\n\"b\"" }).unwrap(), r#"{"text":"a\n\"b\""}"#);
    }

    #[test]
    fn unknown_answers_are_charged_the_reservation_and_early_departures_the_prompt() {
        let unknown = Settlement::nothing(SettledStatus::TooLarge).charged(1_100, 100);
        assert_eq!((unknown.usage, unknown.estimated), (Usage { prompt_tokens: 100, completion_tokens: 1_000 }, true));
        let undecodable = Settlement::nothing(SettledStatus::Undecodable).charged(50, 100);
        assert_eq!(undecodable.usage, Usage { prompt_tokens: 100, completion_tokens: 0 });
        let left = Settlement::nothing(SettledStatus::Cancelled).charged(1_100, 100);
        assert_eq!((left.usage.total(), left.estimated), (100, true));
        let counted = Settlement {
            status: SettledStatus::Cancelled,
            usage: Usage { prompt_tokens: 7, completion_tokens: 3 },
            estimated: false,
        };
        assert_eq!(counted.charged(1_100, 100), counted);
        assert_eq!(Settlement::nothing(SettledStatus::Error).charged(1_100, 100).usage.total(), 0);
        let whole = Settlement::complete(Usage { prompt_tokens: 5, completion_tokens: 6 }, false);
        assert_eq!(whole.charged(1_100, 100), whole);
    }

    #[test]
    fn rate_limits_and_server_errors_are_retried_but_client_errors_are_not() {
        for s in [429, 500, 502, 503, 504, 529] {
            assert!(is_retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_retryable(s), "{s}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy { retries: 2, base_delay_ms: 100, max_delay_ms: 3_000 };
        assert_eq!(retry_delay_ms(0, Some("1"), &p), 1_000);
        assert_eq!(retry_delay_ms(0, Some("0.5"), &p), 500);
        assert_eq!(retry_delay_ms(0, Some("120"), &p), 3_000);
        assert_eq!(retry_delay_ms(0, None, &p), 100);
        assert_eq!(retry_delay_ms(2, None, &p), 400);
        assert_eq!(retry_delay_ms(40, None, &p), 3_000);
        assert_eq!(retry_delay_ms(1, Some("soon"), &p), 200, "an unreadable header falls back to backoff");
        assert_eq!(retry_delay_ms(1, Some("-5"), &p), 200);
        assert_eq!(retry_delay_ms(0, Some(" 2.25 "), &p), 2_250);
        assert_eq!(retry_delay_ms(0, Some("0.0019"), &p), 1, "past milliseconds is dropped");
        assert_eq!(retry_delay_ms(0, Some("99999999999999999999999"), &p), 3_000);
        assert_eq!(retry_delay_ms(0, Some("1."), &p), 1_000);
        assert_eq!(retry_delay_ms(0, Some(".5"), &p), 500);
        for bad in ["", ".", " ", "1e3", "+1", "1.2.3", "inf", "NaN", "1 2"] {
            assert_eq!(retry_delay_ms(1, Some(bad), &p), 200, "{bad:?}");
        }
    }

    #[test]
    fn a_finished_stream_is_complete_and_keeps_upstream_usage() {
        let mut acc = Accumulator::default();
        assert_eq!(acc.apply(StreamEvent::Delta("Hel".into())).as_deref(), Some("Hel"));
        assert_eq!(acc.apply(StreamEvent::Delta("lo".into())).as_deref(), Some("lo"));
        assert_eq!(acc.apply(StreamEvent::Usage(Usage { prompt_tokens: 7, completion_tokens: 2 })), None);
        acc.apply(StreamEvent::Done);
        assert_eq!(acc.text, "Hello");
        assert_eq!(acc.status(), FinalStatus::Complete);
        assert_eq!(acc.final_usage(99), (Usage { prompt_tokens: 7, completion_tokens: 2 }, false));
    }

    #[test]
    fn a_stream_cut_before_its_end_is_an_error_with_estimated_usage() {
        let mut acc = Accumulator::default();
        acc.apply(StreamEvent::Delta("partial answer".into()));
        acc.apply(StreamEvent::Malformed);
        assert_eq!(acc.status(), FinalStatus::Error);
        assert_eq!(acc.malformed, 1);
        assert_eq!(acc.final_usage(10), (Usage { prompt_tokens: 10, completion_tokens: 4 }, true));
    }

    #[test]
    fn tool_calls_and_reasoning_count_but_are_not_forwarded_as_text() {
        let mut acc = Accumulator::default();
        assert_eq!(acc.apply(StreamEvent::OtherOutput("get_weather".into())), None);
        assert_eq!(acc.apply(StreamEvent::OtherOutput("{\"city\":\"Paris\"}".into())), None);
        acc.apply(StreamEvent::Finish("tool_calls".into()));
        assert_eq!(acc.text, "");
        assert_eq!(acc.status(), FinalStatus::Complete);
        // 11 + 16 characters: 7 tokens.
        assert_eq!(acc.final_usage(10), (Usage { prompt_tokens: 10, completion_tokens: 7 }, true));
    }

    fn fragment(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> StreamEvent {
        StreamEvent::ToolCall(ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: arguments.into(),
        })
    }

    #[test]
    fn tool_call_fragments_assemble_into_calls_in_index_order_and_count_once() {
        let mut acc = Accumulator::default();
        for event in [
            fragment(2, Some("toolu_b"), Some("recall"), ""),
            fragment(0, Some("call_a"), Some("get_weather"), "{\"city\":"),
            fragment(2, None, None, "{}"),
            fragment(0, Some("ignored"), Some("ignored"), "\"Paris\"}"),
        ] {
            assert_eq!(acc.apply(event), None, "a tool call is never answer text");
        }
        acc.apply(StreamEvent::Finish("tool_calls".into()));
        let calls = acc.tool_calls();
        assert_eq!(
            calls,
            [
                ToolCall { id: "call_a".into(), name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() },
                ToolCall { id: "toolu_b".into(), name: "recall".into(), arguments: "{}".into() },
            ]
        );
        assert_eq!(acc.text, "");
        // get_weather + recall + {"city":"Paris"} + {} counted once (the ignored name too):
        // 11 + 6 + 16 + 2 + 7 = 42 characters, 11 tokens.
        assert_eq!(acc.final_usage(10), (Usage { prompt_tokens: 10, completion_tokens: 11 }, true));
    }

    #[test]
    fn a_call_without_an_id_gets_one_and_a_call_without_a_name_is_kept() {
        let mut acc = Accumulator::default();
        acc.apply(fragment(3, None, None, "{\"a\""));
        acc.apply(fragment(3, Some(""), None, ":1}"));
        acc.apply(fragment(1, None, Some("recall"), ""));
        acc.apply(fragment(1, Some("late_id"), None, ""));
        assert_eq!(
            acc.tool_calls(),
            [
                ToolCall { id: "late_id".into(), name: "recall".into(), arguments: String::new() },
                ToolCall { id: "call_3".into(), name: String::new(), arguments: "{\"a\":1}".into() },
            ]
        );
        assert!(!acc.is_empty());
        assert!(Accumulator::default().tool_calls().is_empty());
    }

    #[test]
    fn a_cut_stream_keeps_the_reported_prompt_and_estimates_the_output() {
        let mut acc = Accumulator::default();
        acc.apply(StreamEvent::Usage(Usage { prompt_tokens: 25, completion_tokens: 1 }));
        acc.apply(StreamEvent::Delta("twelve chars".into()));
        assert_eq!(acc.status(), FinalStatus::Error);
        assert_eq!(acc.final_usage(10), (Usage { prompt_tokens: 25, completion_tokens: 3 }, true));
        // Once finished, the upstream's count is final, even below the estimate.
        acc.apply(StreamEvent::Done);
        assert_eq!(acc.final_usage(10), (Usage { prompt_tokens: 25, completion_tokens: 1 }, false));
        // Nothing at all arrived: the prompt estimate, never 0.
        assert_eq!(Accumulator::default().final_usage(10), (Usage { prompt_tokens: 10, completion_tokens: 0 }, true));
    }

    #[test]
    fn a_call_that_ended_early_is_never_free_unless_nothing_came() {
        let mut acc = Accumulator::default();
        acc.apply(StreamEvent::Delta("partial".into()));
        let cut = acc.settle(10, false, true);
        assert_eq!(
            (cut.status, cut.usage, cut.estimated),
            (SettledStatus::Cut, Usage { prompt_tokens: 10, completion_tokens: 2 }, true)
        );
        let left = acc.settle(10, true, false);
        assert_eq!((left.status, left.usage.total()), (SettledStatus::Cancelled, 12));
        // A client leaving before any output still pays for the prompt.
        let early = Accumulator::default().settle(10, true, false);
        assert_eq!((early.status, early.usage.total()), (SettledStatus::Cancelled, 10));
        // An upstream failing before any output is a failed connection: nothing.
        let silent = Accumulator::default().settle(10, false, true);
        assert_eq!((silent.status, silent.usage.total(), silent.estimated), (SettledStatus::Error, 0, false));
        let mut reported = Accumulator::default();
        reported.apply(StreamEvent::Delta("partial".into()));
        reported.apply(StreamEvent::Error("overloaded".into()));
        assert_eq!(reported.settle(10, false, true).status, SettledStatus::Error);
        assert_eq!(reported.settle(10, false, true).usage.total(), 12);
        let mut done = Accumulator::default();
        done.apply(StreamEvent::Usage(Usage { prompt_tokens: 3, completion_tokens: 1 }));
        let complete = done.settle(10, false, false);
        assert_eq!((complete.status, complete.usage.total(), complete.estimated), (SettledStatus::Complete, 4, false));
    }

    #[test]
    fn reported_counts_win_and_missing_ones_are_estimated() {
        let estimate = Usage { prompt_tokens: 10, completion_tokens: 5 };
        assert_eq!(Usage::reported_or(None, estimate), (estimate, true));
        let reported = Usage { prompt_tokens: 3, completion_tokens: 2 };
        assert_eq!(Usage::reported_or(Some(reported), estimate), (reported, false));
        let zero = Usage::default();
        assert_eq!(Usage::reported_or(Some(zero), estimate), (estimate, true), "an empty usage object is none");
        let empty_answer = Usage { prompt_tokens: 10, completion_tokens: 0 };
        assert!(!Usage::reported_or(Some(Usage { prompt_tokens: 3, completion_tokens: 0 }), empty_answer).1);
    }

    #[test]
    fn an_in_stream_error_is_an_error_even_if_done_follows() {
        let mut acc = Accumulator::default();
        acc.apply(StreamEvent::Error("overloaded".into()));
        acc.apply(StreamEvent::Done);
        assert_eq!(acc.status(), FinalStatus::Error);
    }

    #[test]
    fn titles_come_from_the_first_line_cut_at_a_word() {
        assert_eq!(derive_title("  How do I   bake bread?\nI have flour."), "How do I bake bread?");
        let long = "word ".repeat(30);
        let t = derive_title(&long);
        assert!(t.ends_with('…'));
        assert!(t.chars().count() <= AUTO_TITLE_CHARS + 1);
        assert!(!t.contains("  "));
        assert_eq!(derive_title(&"x".repeat(100)).chars().count(), AUTO_TITLE_CHARS);
        assert_eq!(derive_title("\n\n"), "");
    }

    #[test]
    fn an_interrupted_call_is_billed_for_its_prompt_and_the_text_sent() {
        let s = Settlement::interrupted("", 120);
        assert_eq!((s.usage.prompt_tokens, s.usage.completion_tokens, s.estimated), (120, 0, true));
        let s = Settlement::interrupted(&"word ".repeat(40), 120);
        assert_eq!(s.usage.prompt_tokens, 120);
        assert!(s.usage.completion_tokens > 0 && s.estimated);
        assert_eq!(s.status, SettledStatus::Cut);
    }
}
