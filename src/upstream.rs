//! LLM upstream calls: one attempt (the HTTP request or Workers AI binding call the core
//! built, with an abort handle), and the retry/fallback loop around attempts, with
//! heartbeats to the client and a first-byte deadline while waiting.

use crate::objects::hub::Hub;
use crate::runtime::streams::{BodyWriter, ByteStream, Sent};
use crate::runtime::{delay, error_text};
use crate::{bindings, runtime};
use edgechat_core::chat::{is_retryable, retry_delay_ms};
use edgechat_core::config::Config;
use edgechat_core::llm::provider::{upstream_error_message, Provider, UpstreamRequest};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::sse::encode_comment;
use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;
use worker::{AbortController, Env, Fetch, Headers, Method, Request, RequestInit, ResponseBody};

/// Longest upstream error body read for its message.
const MAX_ERROR_BODY: usize = 16 * 1024;

pub enum Attempt {
    /// The upstream accepted: its body (a fetch's or Workers AI's stream, which can be handed
    /// on to the client untouched or read by Rust), and the handle that aborts it.
    Streaming(ReadableStream, AbortController),
    /// No stream: the HTTP status (None for a connection failure), `Retry-After`, and a
    /// message safe to show.
    Failed { status: Option<u16>, retry_after: Option<String>, message: String },
}

fn failed(status: Option<u16>, message: impl Into<String>) -> Attempt {
    Attempt::Failed { status, retry_after: None, message: message.into() }
}

/// Sends one request built by the core for `provider`.
pub async fn open(env: &Env, config: &Config, provider: Provider, built: &UpstreamRequest) -> Attempt {
    let (base, _) = config.provider_endpoint(provider);
    if provider == Provider::WorkersAi {
        return open_workers_ai(env, &built.path, &built.body).await;
    }
    let headers = Headers::new();
    for (name, value) in &built.headers {
        if headers.set(name, value).is_err() {
            return failed(None, "invalid upstream header");
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(built.body.as_str().into()));
    let Ok(request) = Request::new_with_init(&format!("{base}{}", built.path), &init) else {
        return failed(None, "invalid upstream URL");
    };
    let controller = AbortController::default();
    let Ok(mut resp) = Fetch::Request(request).send_with_signal(&controller.signal()).await else {
        return failed(None, "could not connect to the upstream");
    };
    let status = resp.status_code();
    if (200..300).contains(&status) {
        return match resp.body() {
            ResponseBody::Stream(stream) => Attempt::Streaming(stream.clone(), controller),
            _ => failed(Some(status), "the upstream sent no body"),
        };
    }
    let retry_after = resp.headers().get("retry-after").ok().flatten();
    let body = read_error_body(resp.stream().ok()).await;
    let body = &body[..body.len().min(MAX_ERROR_BODY)];
    Attempt::Failed { status: Some(status), retry_after, message: upstream_error_message(provider, status, body) }
}

/// Workers AI through the `AI` binding (not available under local `wrangler dev`).
async fn open_workers_ai(env: &Env, model: &str, body: &str) -> Attempt {
    let Ok(ai) = bindings::ai(env) else {
        return failed(Some(503), "the AI binding is not configured for the workers-ai provider");
    };
    match run_workers_ai(&ai, model, body).await {
        Ok(stream) => Attempt::Streaming(stream, AbortController::default()),
        Err(e) => failed(Some(502), format!("Workers AI failed: {}", truncate(&e, 200))),
    }
}

/// Runs `model` on `input` (JSON text) and returns its byte stream. workers-rs's `Ai::run_bytes`
/// takes a serde value and hides the stream, which the relay needs as it is: the binding is
/// called directly.
async fn run_workers_ai(ai: &worker::Ai, model: &str, input: &str) -> Result<ReadableStream, String> {
    let input = js_sys::JSON::parse(input).map_err(|e| error_text(&e))?;
    let raw: &worker::worker_sys::Ai = ai.as_ref().unchecked_ref();
    let output = JsFuture::from(raw.run(model, input)).await.map_err(|e| error_text(&e))?;
    output.dyn_into::<ReadableStream>().map_err(|_| "the model did not return a stream".to_string())
}

/// An error answer's body, up to [`MAX_ERROR_BODY`] (and whatever a failed read gave).
async fn read_error_body(body: Option<ByteStream>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Some(mut stream) = body else { return bytes };
    while let Some(Ok(chunk)) = stream.next().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    bytes
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The heartbeat and stall rules of every model stream, owned here and nowhere else: while
/// a stream waits on the model, the client gets an SSE comment (`: ping`) after
/// `heartbeat_ms` without other output; the model counts as stalled after `stall_ms` without
/// input (before its first byte and between chunks alike); and a client that does not take a
/// send within `stall_ms` counts as gone. [`Outlet`], [`Paced`] and [`connect`] apply them in
/// Rust; a piped stream applies the same values in src/js/relay.js (through
/// `crate::relay::Pump`), and a whole answer's read gives up after `stall_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    pub heartbeat_ms: u64,
    pub stall_ms: u64,
}

impl Pacing {
    pub fn of(config: &Config) -> Self {
        Self { heartbeat_ms: config.heartbeat_ms, stall_ms: config.first_byte_timeout_ms }
    }
}

/// Where a stream's bytes go: one client's response body, or every reader of a turn (with the
/// signal of its stop).
enum To {
    Body(BodyWriter),
    Hub(Rc<Hub>, futures_channel::mpsc::UnboundedReceiver<()>),
}

/// The client end of a streamed response: bytes in order, and whether anyone still reads.
/// Dropping it ends the response.
pub struct Outlet {
    to: To,
    stall_ms: u64,
    /// When the client was last sent anything (the heartbeat counts from it).
    last_sent: u64,
}

impl Outlet {
    /// A send may wait `pacing.stall_ms` for the client to take data before the client counts
    /// as gone.
    pub fn new(body: BodyWriter, pacing: Pacing) -> Self {
        Self { to: To::Body(body), stall_ms: pacing.stall_ms, last_sent: runtime::now_ms() }
    }

    /// The readers of a running turn: a send goes to whoever reads, and "gone" means the turn
    /// was stopped.
    pub fn hub(hub: Rc<Hub>, pacing: Pacing) -> Self {
        let stop = hub.stop_signal();
        Self { to: To::Hub(hub, stop), stall_ms: pacing.stall_ms, last_sent: runtime::now_ms() }
    }

    /// Counts output sent another way (a turn's recorded events) for the heartbeat.
    pub fn touch(&mut self) {
        self.last_sent = runtime::now_ms();
    }

    /// Sends bytes; false once the client has gone. A departed client's body stream is not
    /// always cancelled by the runtime: it may just stop being read, so a send that stays
    /// blocked for the stall time also means gone (never wait forever).
    pub async fn send(&mut self, bytes: Vec<u8>) -> bool {
        let body = match &mut self.to {
            To::Hub(hub, _) => {
                hub.broadcast(&bytes);
                self.last_sent = runtime::now_ms();
                return !hub.is_cancelled();
            }
            To::Body(body) => body,
        };
        let bytes = match body.send(bytes) {
            // The usual case, room in the buffer, needs no timer.
            Sent::Queued => {
                self.last_sent = runtime::now_ms();
                return true;
            }
            Sent::Gone => return false,
            Sent::Full(bytes) => bytes,
        };
        let room = match select(Box::pin(body.drained()), delay(self.stall_ms)).await {
            Either::Left((room, _)) => room,
            Either::Right(_) => false,
        };
        let sent = room && matches!(body.send(bytes), Sent::Queued);
        if sent {
            self.last_sent = runtime::now_ms();
        }
        sent
    }

    /// The request's abort signal, for a body the runtime pipes without this outlet.
    pub fn abort_signal(&self) -> Option<&web_sys::AbortSignal> {
        match &self.to {
            To::Body(body) => body.abort_signal(),
            To::Hub(..) => None,
        }
    }

    /// Resolves when the turn this outlet feeds is stopped (never for a client's body).
    async fn stopped(&mut self) {
        match &mut self.to {
            To::Hub(_, stop) => {
                let _ = stop.next().await;
            }
            To::Body(_) => std::future::pending().await,
        }
    }

    pub async fn ping(&mut self) -> bool {
        self.send(encode_comment("ping").into_bytes()).await
    }
}

pub enum Wait<T> {
    Ready(T),
    TimedOut,
    ClientGone,
}

/// Awaits `fut` by the `pacing` rules: heartbeats to `outlet`, giving up after the stall time.
async fn wait<F: Future + Unpin>(fut: F, outlet: Option<&mut Outlet>, pacing: Pacing) -> Wait<F::Output> {
    let mut once = futures_util::stream::once(fut);
    match Paced::new(pacing).next(&mut once, outlet).await {
        Wait::Ready(Some(value)) => Wait::Ready(value),
        // A one-item stream ends only after its item.
        Wait::Ready(None) | Wait::TimedOut => Wait::TimedOut,
        Wait::ClientGone => Wait::ClientGone,
    }
}

/// Reads one upstream body item by item with a single timer kept across items (a timer per
/// item would cost a runtime timer per chunk), by the [`Pacing`] rules ([`wait`] is the same
/// for one future).
pub struct Paced {
    pacing: Pacing,
    timer: Option<worker::Delay>,
    last_input: u64,
}

impl Paced {
    pub fn new(pacing: Pacing) -> Self {
        Self { pacing, timer: None, last_input: runtime::now_ms() }
    }

    /// The stream's next item, unless it stalls or the client leaves first.
    pub async fn next<S: Stream + Unpin>(
        &mut self,
        stream: &mut S,
        mut outlet: Option<&mut Outlet>,
    ) -> Wait<Option<S::Item>> {
        loop {
            let now = runtime::now_ms();
            let deadline = self.last_input.saturating_add(self.pacing.stall_ms);
            if now >= deadline {
                return Wait::TimedOut;
            }
            // Input the client is not sent (tool-call arguments, reasoning) is not output: the
            // heartbeat counts from the last send, which also notices a client that left.
            let beat = outlet.as_deref().map(|o| o.last_sent.saturating_add(self.pacing.heartbeat_ms));
            let wake_at = beat.map_or(deadline, |beat| deadline.min(beat));
            // A timer armed earlier fires no later than needed: on firing it is re-armed.
            let timer = self.timer.get_or_insert_with(|| delay(wake_at.saturating_sub(now).max(1)));
            let stopped = async {
                match outlet.as_deref_mut() {
                    Some(o) => o.stopped().await,
                    None => std::future::pending().await,
                }
            };
            let waited = match select(select(stream.next(), timer), std::pin::pin!(stopped)).await {
                Either::Left((waited, _)) => waited,
                Either::Right(_) => return Wait::ClientGone,
            };
            match waited {
                Either::Left((item, _)) => {
                    self.last_input = runtime::now_ms();
                    return Wait::Ready(item);
                }
                Either::Right(_) => {
                    self.timer = None;
                    let now = runtime::now_ms();
                    if now >= deadline {
                        return Wait::TimedOut;
                    }
                    if let (Some(o), true) = (outlet.as_deref_mut(), beat.is_some_and(|beat| now >= beat)) {
                        if !o.ping().await {
                            return Wait::ClientGone;
                        }
                    }
                }
            }
        }
    }
}

/// An upstream that answered: the model that did, its body, and the handle that aborts it.
pub struct Connected {
    pub route: ModelRoute,
    pub body: ReadableStream,
    pub controller: AbortController,
}

/// Why no upstream answered.
pub enum NoStream {
    /// Every model failed before its first byte: the last failure's message and status.
    Failed {
        timed_out: bool,
        status: Option<u16>,
        message: String,
    },
    ClientGone,
}

/// Tries each model of `chain` in turn, retrying retryable failures (429, 5xx, connection
/// errors) with backoff that honours `Retry-After`; `build` makes each model's request.
pub async fn connect(
    env: &Env,
    config: &Config,
    chain: &[ModelRoute],
    // Dynamic, so that the retry loop is compiled once for all its callers.
    build: &dyn Fn(&ModelRoute) -> Result<UpstreamRequest, String>,
    mut outlet: Option<&mut Outlet>,
) -> Result<Connected, NoStream> {
    let c = config;
    let pacing = Pacing::of(c);
    let mut last =
        NoStream::Failed { timed_out: false, status: None, message: "no upstream model is configured".into() };
    for route in chain {
        let built = match build(route) {
            Ok(b) => b,
            Err(message) => {
                last = NoStream::Failed { timed_out: false, status: Some(400), message };
                continue;
            }
        };
        for attempt in 0..=c.retry.retries {
            let open = Box::pin(open(env, c, route.provider, &built));
            match wait(open, outlet.as_deref_mut(), pacing).await {
                Wait::Ready(Attempt::Streaming(body, controller)) => {
                    return Ok(Connected { route: route.clone(), body, controller })
                }
                Wait::Ready(Attempt::Failed { status, retry_after, message }) => {
                    last = NoStream::Failed { timed_out: false, status, message };
                    if !status.is_none_or(is_retryable) || attempt == c.retry.retries {
                        break;
                    }
                    let pause_ms = retry_delay_ms(attempt, retry_after.as_deref(), &c.retry);
                    let pause = Box::pin(delay(pause_ms));
                    // The pause itself never stalls: it ends before its own deadline.
                    let pause_pacing = Pacing { stall_ms: pause_ms + pacing.heartbeat_ms, ..pacing };
                    if let Wait::ClientGone = wait(pause, outlet.as_deref_mut(), pause_pacing).await {
                        return Err(NoStream::ClientGone);
                    }
                }
                Wait::TimedOut => {
                    let message = format!("the model sent nothing within {} ms", pacing.stall_ms);
                    last = NoStream::Failed { timed_out: true, status: None, message };
                    break;
                }
                Wait::ClientGone => return Err(NoStream::ClientGone),
            }
        }
    }
    Err(last)
}
