//! Upstream and relay of a gateway call: the model connected (retries and fallbacks), then
//! its answer delivered as a whole completion, translated chunk by chunk, or piped as it is,
//! ending in the call's [`Settlement`] (and its cache entry when it completed).

use super::billing::Billing;
use super::items;
use super::{cache, Head};
use crate::http::JSON;
use crate::relay::{Ending, Pump};
use crate::runtime::streams::{self, ByteStream, Whole};
use crate::upstream::{self, Connected, NoStream, Outlet, Paced, Pacing, Wait};
use edgechat_core::answer::{self, Dialect, Finish};
use edgechat_core::chat::{Accumulator, FinalStatus, SettledStatus, Settlement};
use edgechat_core::config::Config;
use edgechat_core::gateway::{
    json_mode_answer, json_mode_event, passthrough_request, translation_refused, GatewayRequest, OpenAiError,
    RawObject, ResponseMeta,
};
use edgechat_core::llm::provider::{build_request, decode_completion, ChatRequest, Provider, StreamDecoder};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::{StreamEvent, Usage};
use edgechat_core::messages;
use edgechat_core::ApiError;
use futures_channel::oneshot;
use worker::Env;

/// Largest non-streamed upstream answer read.
const MAX_COMPLETION_BYTES: usize = 4 * 1024 * 1024;

/// The first model of `chain` that answers: OpenAI models get the client's Chat Completions
/// request as is, Anthropic models a Messages client's own body (`original`) as is, others a
/// translation.
pub(super) async fn connect(
    env: &Env,
    config: &Config,
    chain: &[ModelRoute],
    req: &GatewayRequest,
    original: Option<&RawObject>,
) -> Result<Connected, OpenAiError> {
    let build = |r: &ModelRoute| {
        // A fallback that cannot take the request (the first model was checked on admission)
        // is skipped.
        if let Some(refused) = translation_refused(req, r) {
            return Err(refused.message);
        }
        let (_, api_key) = config.provider_endpoint(r.provider);
        if let (Provider::Anthropic, Some(original)) = (r.provider, original) {
            return Ok(messages::passthrough_request(original, &r.upstream, api_key));
        }
        if r.provider == Provider::OpenAi {
            return Ok(passthrough_request(req, &r.upstream, api_key));
        }
        let tools = req.tool_defs();
        let chat = ChatRequest {
            model: &r.upstream,
            messages: &req.messages,
            max_tokens: req.max_tokens.or(Some(r.max_output_tokens)),
            temperature: req.temperature.as_deref(),
            stream: req.stream,
            tools: &tools,
            tool_choice: req.translated_choice(),
        };
        Ok(build_request(r.provider, api_key, &chat))
    };
    upstream::connect(env, config, chain, &build, None).await.map_err(connect_error)
}

pub(super) fn connect_error(failure: NoStream) -> OpenAiError {
    match failure {
        NoStream::Failed { timed_out: true, message, .. } => {
            OpenAiError { status: 504, message, kind: "server_error", param: None, code: Some("upstream_timeout") }
        }
        NoStream::Failed { status: Some(400 | 404 | 413 | 422), message, .. } => {
            OpenAiError { param: None, ..OpenAiError::invalid("", message) }
        }
        NoStream::Failed { status: Some(429), message, .. } => {
            OpenAiError { status: 429, message, kind: "requests", param: None, code: Some("rate_limit_exceeded") }
        }
        NoStream::Failed { message, .. } => {
            OpenAiError { status: 502, message, kind: "server_error", param: None, code: Some("upstream_error") }
        }
        NoStream::ClientGone => OpenAiError::from(&ApiError::internal()),
    }
}

/// What delivering an answer needs: the call, who pays, and where a complete answer is cached.
pub(super) struct Answer<'a> {
    pub config: &'a Config,
    /// The API the client called: what its answer is written in.
    pub dialect: Dialect,
    pub req: &'a GatewayRequest,
    pub meta: &'a ResponseMeta,
    pub billing: &'a Billing,
    pub cache_to: Option<&'a str>,
}

impl Answer<'_> {
    /// Sends the connected model's answer to the client (`head` first) and says how it ended.
    pub async fn deliver(
        &self,
        connected: Connected,
        head: oneshot::Sender<Head>,
        cache: &'static str,
        outlet: Option<Outlet>,
    ) -> Settlement {
        match (outlet, connected) {
            // The upstream already speaks the client's format: its bytes go out untouched.
            (Some(outlet), connected) if self.native(&connected.route) => {
                self.pass_through(connected, head, cache, outlet.abort_signal()).await
            }
            (Some(outlet), connected) => {
                if head.send(Head::Stream { cache }).is_err() {
                    connected.controller.abort();
                    Settlement::nothing(SettledStatus::Cancelled)
                } else {
                    self.translate(connected, outlet).await
                }
            }
            (None, connected) => {
                let (result, outcome) = self.complete(connected).await;
                let _ = head.send(match result {
                    Ok(bytes) => Head::Body { content_type: JSON, bytes, cache },
                    Err(e) => Head::Error(e),
                });
                outcome
            }
        }
    }

    /// Whether the route's provider speaks the client's dialect (its answer needs no translation).
    fn native(&self, route: &ModelRoute) -> bool {
        self.dialect.native() == Some(route.provider)
    }

    /// A non-streamed answer: a native upstream's bytes as they came, others translated. An
    /// answer over the size limit or not of the provider's format is charged what was reserved.
    async fn complete(&self, connected: Connected) -> (Result<Vec<u8>, OpenAiError>, Settlement) {
        let Connected { route, body, controller } = connected;
        let body = match read_all(&body, self.config, MAX_COMPLETION_BYTES).await {
            Ok(b) => b,
            Err((e, too_large)) => {
                controller.abort();
                let outcome =
                    Settlement::nothing(if too_large { SettledStatus::TooLarge } else { SettledStatus::Error });
                return (Err(e), outcome);
            }
        };
        let decoded = match decode_completion(route.provider, &body) {
            Ok(d) => d,
            Err(message) => {
                let failure = NoStream::Failed { timed_out: false, status: None, message };
                return (Err(connect_error(failure)), Settlement::nothing(SettledStatus::Undecodable));
            }
        };
        let estimate =
            Usage { prompt_tokens: self.billing.prompt_estimate, completion_tokens: decoded.estimated_output_tokens() };
        let (usage, estimated) = Usage::reported_or(decoded.usage, estimate);
        let finish = Finish::of(decoded.finish_reason.as_deref().unwrap_or("stop"));
        let (decoded, finish) = match self.req.json_via_tool(route.provider) {
            true => json_mode_answer(decoded, finish),
            false => (decoded, finish),
        };
        if let Some(key) = self.cache_to {
            cache::put(&self.billing.env, self.config, key, &decoded.text, finish, usage).await;
        }
        let out = if self.native(&route) {
            body
        } else {
            let meta = ResponseMeta { model: route.name.clone(), ..self.meta.clone() };
            let answer = answer::Whole { text: &decoded.text, tool_calls: &decoded.tool_calls, finish, usage };
            // Kept before the answer goes out: a client may name its items in its very next request.
            let kept = answer::kept_items(self.dialect, &meta, &answer);
            items::keep(&self.billing.env, &self.billing.user_id, kept).await;
            answer::whole(self.dialect, &meta, &answer).into_bytes()
        };
        (Ok(out), Settlement::complete(usage, estimated))
    }

    /// A streamed answer from a provider that speaks another format, translated event by
    /// event to the client's dialect while it arrives.
    async fn translate(&self, connected: Connected, mut outlet: Outlet) -> Settlement {
        let Connected { route, body, controller } = connected;
        let mut stream = ByteStream::from(body);
        let meta = ResponseMeta { model: route.name.clone(), ..self.meta.clone() };
        let mut writer = answer::stream_writer(self.dialect, &meta, self.req.include_usage);
        let mut decoder = StreamDecoder::new(route.provider);
        let mut acc = Accumulator::default();
        let mut finish: Option<String> = None;
        let mut error: Option<&'static str> = None;
        let json_via_tool = self.req.json_via_tool(route.provider);
        let mut gone = !outlet.send(writer.open().into_bytes()).await;
        let mut paced = Paced::new(Pacing::of(self.config));
        while !gone {
            match paced.next(&mut stream, Some(&mut outlet)).await {
                Wait::Ready(Some(Ok(bytes))) => {
                    for event in decoder.feed(&bytes) {
                        let event = if json_via_tool { json_mode_event(event) } else { event };
                        let out = match &event {
                            StreamEvent::Finish(reason) => {
                                finish = Some(reason.clone());
                                None
                            }
                            StreamEvent::ToolCall(fragment) => Some(writer.tool_call(fragment)),
                            _ => None,
                        };
                        let out = acc.apply(event).map(|text| writer.text(&text)).or(out);
                        if let (false, Some(out)) = (gone, out) {
                            gone = !outlet.send(out.into_bytes()).await;
                        }
                    }
                }
                Wait::Ready(None) => {
                    for event in decoder.finish() {
                        acc.apply(event);
                    }
                    break;
                }
                Wait::Ready(Some(Err(_))) => {
                    error = Some("upstream_error");
                    break;
                }
                Wait::TimedOut => {
                    error = Some("upstream_timeout");
                    break;
                }
                Wait::ClientGone => gone = true,
            }
        }
        drop(stream);
        controller.abort();
        if error.is_none() && !gone && acc.status() == FinalStatus::Error {
            error = Some("upstream_error");
        }
        // A departed client also cancels the upstream fetch, which then looks like a broken
        // stream: ask the client before blaming the model.
        if error.is_some() && !gone && !outlet.ping().await {
            gone = true;
            error = None;
        }
        let finish = match Finish::of(finish.as_deref().unwrap_or("stop")) {
            Finish::ToolCalls if json_via_tool => Finish::Stop,
            finish => finish,
        };
        if !gone {
            let (usage, _) = acc.final_usage(self.billing.prompt_estimate);
            let tail = match error {
                Some(code) => writer.fail(code),
                None => writer.close(finish, &usage),
            };
            // Kept before the closing event, for the same reason as a whole answer's.
            if error.is_none() {
                items::keep(&self.billing.env, &self.billing.user_id, writer.kept_items()).await;
            }
            outlet.send(tail.into_bytes()).await;
        }
        self.settle_stream(self.cache_to, &acc, finish, gone, error.is_some()).await
    }

    /// A streamed answer from an OpenAI-compatible upstream: its bytes are piped to the client
    /// by the runtime (no wasm work per chunk); Rust reads a copy once at the end for the usage
    /// record and the cache. The upstream was asked for usage (see [`passthrough_request`]):
    /// a client that did not ask gets the stream without it. A model that breaks off or stalls
    /// cuts the client's stream off.
    async fn pass_through(
        &self,
        connected: Connected,
        head: oneshot::Sender<Head>,
        cache: &'static str,
        signal: Option<&web_sys::AbortSignal>,
    ) -> Settlement {
        let Connected { route, body, controller } = connected;
        let mut writer = answer::stream_writer(self.dialect, self.meta, self.req.include_usage);
        let tails = (writer.fail("upstream_timeout"), writer.fail("upstream_error"));
        let pacing = Pacing::of(self.config);
        // Only an OpenAI stream carries usage the client did not ask for (Anthropic's always
        // has it, in its own events).
        let strip_usage = route.provider == Provider::OpenAi && !self.req.include_usage;
        let tails = (tails.0.as_bytes(), tails.1.as_bytes());
        let pump = Pump::start(&body, pacing, MAX_COMPLETION_BYTES, tails, signal, strip_usage);
        if head.send(Head::Piped { body: pump.client_body(), cache }).is_err() {
            controller.abort();
            return Settlement::nothing(SettledStatus::Cancelled);
        }
        let ending = pump.ended().await;
        if ending != Ending::End {
            controller.abort();
        }
        let (bytes, truncated) = pump.relayed();
        let mut decoder = StreamDecoder::new(route.provider);
        let mut acc = Accumulator::default();
        let mut finish: Option<String> = None;
        let mut events = decoder.feed(&bytes);
        events.extend(decoder.finish());
        if truncated {
            // The copy stopped at its cap; the stream's end (finish reason, usage) is in its
            // last bytes, which begin anywhere in an event: only those two are read there.
            let mut decoder = StreamDecoder::new(route.provider);
            let last = decoder.feed(&pump.last_bytes());
            events.extend(last.into_iter().filter(|e| matches!(e, StreamEvent::Finish(_) | StreamEvent::Usage(_))));
        }
        for event in events {
            if let StreamEvent::Finish(reason) = &event {
                finish = Some(reason.clone());
            }
            acc.apply(event);
        }
        // The client already has the upstream's bytes as they were, a cut-off included: what
        // is left is how the call counts.
        let failed = match ending {
            Ending::Stalled | Ending::Broken => true,
            Ending::End => !truncated && acc.status() == FinalStatus::Error,
            Ending::Gone => false,
        };
        let gone = ending == Ending::Gone;
        let finish = Finish::of(finish.as_deref().unwrap_or("stop"));
        let cache_to = self.cache_to.filter(|_| !truncated);
        self.settle_stream(cache_to, &acc, finish, gone, failed).await
    }

    /// How a streamed call ended (`gone`: the client left; `failed`: the stream broke off,
    /// stalled or reported an error) and what it is billed, and its answer cached when it
    /// completed.
    async fn settle_stream(
        &self,
        cache_to: Option<&str>,
        acc: &Accumulator,
        finish: Finish,
        gone: bool,
        failed: bool,
    ) -> Settlement {
        let outcome = self.billing.of_stream(acc, gone, failed);
        if let (true, Some(key)) = (outcome.status == SettledStatus::Complete, cache_to) {
            cache::put(&self.billing.env, self.config, key, &acc.text, finish, outcome.usage).await;
        }
        outcome
    }
}

/// Reads a whole upstream body of at most `cap` bytes, giving up when it stalls (read in
/// JavaScript: one crossing into wasm for the whole answer); an error says whether the answer
/// was over the size limit.
pub(super) async fn read_all(
    body: &web_sys::ReadableStream,
    config: &Config,
    cap: usize,
) -> Result<Vec<u8>, (OpenAiError, bool)> {
    let cap = cap as u64;
    let (timed_out, too_large, message) = match streams::read_whole(body, cap, cap, Pacing::of(config).stall_ms).await {
        Ok(Whole::Bytes(bytes)) => return Ok(bytes),
        Ok(Whole::Stalled) => (true, false, "the model stopped answering"),
        Ok(Whole::TooLarge) => (false, true, "the model's answer is over the size limit"),
        Err(_) => (false, false, "the model's answer broke off"),
    };
    Err((connect_error(NoStream::Failed { timed_out, status: None, message: message.into() }), too_large))
}
