//! The chat turn, run by the turn object (src/objects/turns.rs): calls the upstream (retries,
//! fallbacks, timeouts), records its answer as numbered SSE events for every reader while it
//! arrives (one `delta` per pass over what has arrived), runs the tools the model calls and
//! calls it again (the agent loop), and finalizes the assistant message in D1 exactly once,
//! whatever happens. Only a stop ends it early; its readers come and go.

use crate::http::{AppError, Failure};
use crate::objects::hub::Hub;
use crate::quota::{self, Admission, Lease};
use crate::runtime::streams::Gathered;
use crate::store::{messages, usage, D1PreparedStatement, Db};
use crate::upstream::{self, Connected, NoStream, Outlet, Paced, Pacing, Wait};
use crate::{bindings, runtime, tools};
use edgechat_core::accounts::User;
use edgechat_core::admission::Reserve;
use edgechat_core::agent::turn::{self, Step, StepCall, ToolCallEvent, ToolResultEvent};
use edgechat_core::agent::Tool;
use edgechat_core::chat::{Accumulator, Delta, EventError, FinalStatus, Settlement, TurnDone, TurnFailed};
use edgechat_core::config::Config;
use edgechat_core::conversations::Message;
use edgechat_core::ids::{ConversationId, MessageId, UsageRecordId};
use edgechat_core::llm::context::estimate_messages;
use edgechat_core::llm::provider::{build_request, ChatRequest, StreamDecoder};
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::{ChatMessage, ToolCall, ToolChoice, ToolDef, Usage};
use edgechat_core::log::{failure_line, TurnLog};
use edgechat_core::serde_json;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use worker::Env;

/// A turn as the request that started it hands it to the turn object: owned, serializable.
#[derive(Serialize, Deserialize)]
pub struct TurnSpec {
    pub request_id: String,
    pub user: User,
    pub api_key_id: Option<String>,
    pub conversation_id: ConversationId,
    pub assistant_message_id: MessageId,
    /// The requested model's name, then its fallbacks' (routed again from the configuration).
    pub chain: Vec<String>,
    pub context: Vec<ChatMessage>,
    pub prompt_estimate: u64,
    pub completion_reserve: u64,
    /// The tools offered, by name.
    pub tools: Vec<String>,
    pub auto_title: Option<String>,
    pub started_at: u64,
    pub admission: Admission,
    /// The first event's data (`message`: the question and the answer's id).
    pub first_event: String,
}

impl TurnSpec {
    /// The turn to run, with `config` and `env` of the object that runs it.
    pub fn into_turn(self, env: Env, config: Rc<Config>) -> (Turn, Admission, String) {
        let chain = self.chain.iter().filter_map(|name| config.routes.resolve(Some(name)).ok().cloned()).collect();
        let tools: Vec<Tool> = self.tools.iter().filter_map(|name| Tool::parse(name)).collect();
        let tool_defs = edgechat_core::agent::definitions(&tools);
        let lease = self.admission.lease(&env);
        let turn = Turn {
            env,
            config,
            request_id: self.request_id,
            user: self.user,
            api_key_id: self.api_key_id,
            conversation_id: self.conversation_id,
            assistant_message_id: self.assistant_message_id,
            chain,
            context: self.context,
            prompt_estimate: self.prompt_estimate,
            completion_reserve: self.completion_reserve,
            tools,
            tool_defs,
            auto_title: self.auto_title,
            started_at: self.started_at,
            lease,
        };
        (turn, self.admission, self.first_event)
    }
}

/// Everything a turn needs, owned, so it can outlive the request.
pub struct Turn {
    pub env: Env,
    pub config: Rc<Config>,
    pub request_id: String,
    /// Who the turn is billed to (each model call of the loop is admitted by their plan).
    pub user: User,
    /// The API key the turn was requested with, for its usage record.
    pub api_key_id: Option<String>,
    pub conversation_id: ConversationId,
    pub assistant_message_id: MessageId,
    /// The requested model, then its fallbacks.
    pub chain: Vec<ModelRoute>,
    pub context: Vec<ChatMessage>,
    pub prompt_estimate: u64,
    /// The output tokens each model call reserves (its worst case).
    pub completion_reserve: u64,
    /// The tools the model is offered (none: a plain turn), and their definitions as sent.
    pub tools: Vec<Tool>,
    pub tool_defs: Vec<ToolDef<'static>>,
    pub auto_title: Option<String>,
    pub started_at: u64,
    /// The hold on the running call's reservation, moved to each later call's.
    pub lease: Lease,
}

/// The stored assistant message and, when the turn failed, the error to report.
pub struct TurnResult {
    pub message: Option<Message>,
    pub error: Option<(TurnError, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnError {
    /// No byte from the upstream in time (504).
    Timeout,
    /// The upstream failed or broke off (502).
    Upstream,
    /// The stored result could not be written (500).
    Storage,
    /// A later model call of the loop was refused by the plan's limits (429, or 403).
    Refused { status: u16, code: &'static str },
    /// The object running the turn was restarted under it (503).
    Interrupted,
}

impl TurnError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "upstream_timeout",
            Self::Upstream => "upstream_error",
            Self::Storage => "internal_error",
            Self::Refused { code, .. } => code,
            Self::Interrupted => "turn_interrupted",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Timeout => 504,
            Self::Upstream => 502,
            Self::Storage => 500,
            Self::Refused { status, .. } => *status,
            Self::Interrupted => 503,
        }
    }
}

/// The turn's output: numbered events recorded and sent to its readers by the hub, and the
/// outlet that paces heartbeats between them.
struct SseOut {
    hub: Rc<Hub>,
    outlet: Outlet,
}

impl SseOut {
    /// Records an event; false once the turn is stopped.
    async fn event(&mut self, name: &str, data: &str) -> bool {
        self.hub.record(name, data);
        self.outlet.touch();
        !self.hub.is_cancelled()
    }

    /// An event whose data is `value` as JSON.
    async fn json_event(&mut self, name: &str, value: &impl Serialize) -> bool {
        // The views hold strings and integers only: serializing cannot fail.
        let data = serde_json::to_string(value).unwrap_or_default();
        self.event(name, &data).await
    }
}

/// One model call of a turn: what arrived, from which model, and how it ended.
struct StepRun {
    acc: Accumulator,
    /// The model that answered (None: none did).
    route: Option<ModelRoute>,
    error: Option<(TurnError, String)>,
    client_gone: bool,
}

/// Calls the model with `messages` (retries and fallbacks as configured), relaying text as
/// `delta` events, and reads its answer to the end.
async fn call_model(
    turn: &Turn,
    messages: &[ChatMessage],
    tools: &[ToolDef<'_>],
    tool_choice: ToolChoice<'_>,
    out: &mut SseOut,
    first_token_at: &mut Option<u64>,
) -> StepRun {
    let c = &turn.config;
    let mut run = StepRun { acc: Accumulator::default(), route: None, error: None, client_gone: false };
    let build = |route: &ModelRoute| {
        let (_, key) = c.provider_endpoint(route.provider);
        let req = ChatRequest {
            model: &route.upstream,
            messages,
            max_tokens: Some(route.max_output_tokens),
            temperature: None,
            stream: true,
            tools,
            tool_choice,
        };
        Ok(build_request(route.provider, key, &req))
    };
    let Connected { route, body, controller } =
        match upstream::connect(&turn.env, c, &turn.chain, &build, Some(&mut out.outlet)).await {
            Ok(connected) => connected,
            Err(NoStream::ClientGone) => {
                run.client_gone = true;
                return run;
            }
            Err(NoStream::Failed { timed_out, message, .. }) => {
                run.error = Some((if timed_out { TurnError::Timeout } else { TurnError::Upstream }, message));
                return run;
            }
        };
    let mut stream = Gathered::new(&body);
    out.hub.watch(controller);
    let mut decoder = StreamDecoder::new(route.provider);
    let mut paced = Paced::new(Pacing::of(c));
    run.route = Some(route);
    let acc = &mut run.acc;
    loop {
        match paced.next(&mut stream, Some(&mut out.outlet)).await {
            Wait::Ready(Some(Ok(bytes))) => {
                // Whatever arrived is one pass: decoded, then sent as one `delta`.
                let mut text = String::new();
                for event in decoder.feed(&bytes) {
                    if let Some(piece) = acc.apply(event) {
                        text.push_str(&piece);
                    }
                }
                if text.is_empty() {
                    continue;
                }
                first_token_at.get_or_insert_with(runtime::now_ms);
                if !out.json_event("delta", &Delta { text: &text }).await {
                    run.client_gone = true;
                    break;
                }
            }
            Wait::Ready(Some(Err(_))) => {
                // A stop aborts the upstream, which then looks like a broken stream.
                if out.hub.is_cancelled() {
                    run.client_gone = true;
                } else {
                    run.error = Some((TurnError::Upstream, "the model's stream broke off".into()));
                }
                break;
            }
            Wait::Ready(None) => {
                for event in decoder.finish() {
                    acc.apply(event);
                }
                break;
            }
            Wait::TimedOut => {
                let message = format!("the model sent nothing for {} ms", c.first_byte_timeout_ms);
                run.error = Some((TurnError::Timeout, message));
                break;
            }
            Wait::ClientGone => {
                run.client_gone = true;
                break;
            }
        }
    }
    // Stop paying for tokens nobody will read.
    drop(stream);
    out.hub.abort_upstream();
    run.client_gone |= out.hub.is_cancelled();
    if run.client_gone {
        run.error = None;
    } else if run.error.is_none() && acc.status() == FinalStatus::Error {
        let message = acc.upstream_error.clone().unwrap_or_else(|| "the model's stream ended early".into());
        run.error = Some((TurnError::Upstream, message));
    }
    run
}

/// A model call's bill: its usage record and its admission's settlement.
struct Bill {
    admission: Admission,
    route: Option<ModelRoute>,
    settled: Option<Settlement>,
    status: FinalStatus,
}

impl Bill {
    fn usage(&self) -> (Usage, bool) {
        self.settled.map_or((Usage::default(), false), |s| (s.usage, s.estimated))
    }

    /// The usage record (when a model answered, or the call failed) and the settlement.
    fn statements(&self, db: &Db, turn: &Turn, now: u64) -> Result<Vec<D1PreparedStatement>, AppError> {
        let (usage, estimated) = self.usage();
        let route = self.route.as_ref().or(turn.chain.first());
        let usage_id = UsageRecordId::new(runtime::random_bytes().unwrap_or_default());
        let record = usage::UsageRecord {
            usage_record_id: &usage_id,
            user_id: &turn.user.user_id,
            api_key_id: turn.api_key_id.as_deref(),
            source: "chat",
            model: route.map_or("", |r| r.name.as_str()),
            provider: self.route.as_ref().map(|r| r.provider.as_str()),
            // A model that answered is billed for what arrived, at least the prompt when the
            // client left or the stream was cut; no model answering costs nothing.
            status: self.settled.map_or(self.status.as_str(), |s| s.status.as_str()),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            is_usage_estimated: estimated,
            is_cache_hit: false,
            created_at: now,
        };
        let mut statements = vec![usage::insert_statement(db, &record)?];
        statements.extend(self.admission.settle_statements(db, usage.total())?);
        Ok(statements)
    }
}

fn turn_db(env: &Env) -> Result<Db, AppError> {
    bindings::d1(env).map(Db::new)
}

fn log_failure(request_id: &str, e: &AppError) {
    if let Failure::Platform { context, cause } = e.failure() {
        runtime::log(&failure_line(request_id, context, cause));
    }
}

/// Settles the previous model call of the loop, then admits the next against the user's
/// plan, like the first; a refusal becomes the turn's error.
async fn next_admission(
    turn: &Turn,
    previous: Bill,
    messages: &[ChatMessage],
    hub: &Hub,
) -> Result<Admission, (TurnError, String)> {
    let now = runtime::now_ms();
    match turn_db(&turn.env).and_then(|db| Ok((previous.statements(&db, turn, now)?, db))) {
        Ok((statements, db)) => {
            if let Err(e) = db.batch("settle step", statements).await {
                log_failure(&turn.request_id, &e);
            }
        }
        Err(e) => log_failure(&turn.request_id, &e),
    }
    let streaming = previous.admission.streams();
    let admitted = admit_step(turn, messages, streaming).await.map_err(|e| match e.into_failure() {
        Failure::Api(api) => (TurnError::Refused { status: api.status, code: api.code }, api.message.clone()),
        _ => (TurnError::Storage, "the next model call could not be admitted".into()),
    })?;
    hub.hold(&admitted);
    Ok(admitted)
}

/// Admits the next model call of the loop against the user's plan, like the first.
async fn admit_step(turn: &Turn, messages: &[ChatMessage], streaming: bool) -> Result<Admission, AppError> {
    let db = turn_db(&turn.env)?;
    let prompt_tokens = estimate_messages(messages) + turn::tools_estimate(&turn.tool_defs);
    let reserve = Reserve { prompt_tokens, completion_tokens: turn.completion_reserve };
    let model = turn.chain.first().map_or("", |r| r.name.as_str());
    let call = quota::Call::new(model, "chat", turn.api_key_id.as_deref(), reserve, streaming)?;
    let (admission, _) = quota::admit_on(&db, &turn.config, &turn.user, call, Vec::new()).await?;
    turn.lease.follow(&admission);
    Ok(admission)
}

/// Runs the model's tool calls of step `step` in order, with their events; stops running them
/// (each then answered as not run) once the client has gone or when `may_run` is false.
async fn run_tools(
    turn: &Turn,
    step: u32,
    calls: &[ToolCall],
    may_run: bool,
    out: &mut SseOut,
    client_gone: &mut bool,
) -> Vec<StepCall> {
    let db = turn_db(&turn.env);
    let mut done = Vec::with_capacity(calls.len());
    for call in calls {
        if !*client_gone {
            let event = ToolCallEvent { step, id: &call.id, name: &call.name, arguments: &call.arguments };
            *client_gone = !out.json_event("tool_call", &event).await;
        }
        let (ok, result) = if *client_gone {
            (false, turn::NOT_RUN_STOPPED.to_owned())
        } else if !may_run {
            (false, turn::NOT_RUN_LIMIT.to_owned())
        } else {
            match (Tool::parse(&call.name).filter(|t| turn.tools.contains(t)), &db) {
                (None, _) => {
                    (false, format!("unknown tool {:?}: this conversation offers {}", call.name, offered(turn)))
                }
                (Some(_), Err(e)) => {
                    log_failure(&turn.request_id, e);
                    (false, "the tool is unavailable right now".to_owned())
                }
                (Some(tool), Ok(db)) => {
                    match tools::run(db, &turn.user.user_id, turn.config.agent_caps, tool, &call.arguments).await {
                        Ok(outcome) => (!outcome.is_error, outcome.text),
                        Err(e) => {
                            log_failure(&turn.request_id, &e);
                            (false, "the tool failed; try again later".to_owned())
                        }
                    }
                }
            }
        };
        let call = StepCall::new(call.clone(), ok, result);
        if !*client_gone {
            *client_gone = !out.json_event("tool_result", &ToolResultEvent::new(step, &call)).await;
        }
        done.push(call);
    }
    done
}

fn offered(turn: &Turn) -> String {
    turn.tools.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// What a turn's loop produced: the answer to store, how it ended, and the last model call's
/// bill (written with the answer).
struct Answer {
    text: String,
    steps: Vec<Step>,
    usage: Usage,
    estimated: bool,
    first_token_at: Option<u64>,
    /// The last model that answered.
    used: Option<ModelRoute>,
    malformed: u32,
    model_calls: u32,
    tool_calls: u32,
    error: Option<(TurnError, String)>,
    client_gone: bool,
    last_bill: Option<Bill>,
}

impl Answer {
    fn status(&self) -> FinalStatus {
        if self.client_gone {
            FinalStatus::Cancelled
        } else if self.error.is_some() {
            FinalStatus::Error
        } else {
            FinalStatus::Complete
        }
    }
}

/// Runs a turn to its end, its events going to `hub`, and stores the result; never returns
/// early without finalizing. The hub is finished by the caller.
pub async fn run(turn: Turn, admission: Admission, hub: Rc<Hub>, first_event: &str) -> TurnResult {
    let mut out = SseOut { outlet: Outlet::hub(hub.clone(), Pacing::of(&turn.config)), hub };
    out.event("message", first_event).await;
    let answer = agent_loop(&turn, admission, &mut out).await;
    finish(&turn, answer, &mut out).await
}

/// The agent loop: while the model answers with tool calls (and the loop's limits allow),
/// the calls are run, their results appended, and the model called again; each call is
/// admitted, billed and settled on its own (the last one's bill is left for the answer's
/// batch). A stop ends it wherever it is.
async fn agent_loop(turn: &Turn, admission: Admission, out: &mut SseOut) -> Answer {
    let c = Rc::clone(&turn.config);
    let defs = &turn.tool_defs;
    let mut messages = turn.context.clone();
    let mut a = Answer {
        text: String::new(),
        steps: Vec::new(),
        usage: Usage::default(),
        estimated: false,
        first_token_at: None,
        used: None,
        malformed: 0,
        model_calls: 0,
        tool_calls: 0,
        error: None,
        client_gone: out.hub.is_cancelled(),
        last_bill: None,
    };
    let mut admission = Some(admission);
    while !a.client_gone {
        a.model_calls += 1;
        let step_no = a.model_calls;
        if let Some(bill) = a.last_bill.take() {
            match next_admission(turn, bill, &messages, &out.hub).await {
                Ok(next) => admission = Some(next),
                Err(refused) => {
                    a.error = Some(refused);
                    break;
                }
            }
        }
        let elapsed = runtime::now_ms().saturating_sub(turn.started_at);
        let choice = if defs.is_empty() { ToolChoice::Auto } else { c.agent_loop.choice(step_no, elapsed) };
        let run = call_model(turn, &messages, defs, choice, out, &mut a.first_token_at).await;
        a.client_gone |= run.client_gone;
        a.malformed += run.acc.malformed;
        a.error = run.error;
        let estimate = prompt_estimate(turn, step_no, &messages);
        let settled = run.route.as_ref().map(|_| run.acc.settle(estimate, a.client_gone, a.error.is_some()));
        if let Some(s) = settled {
            a.usage.prompt_tokens += s.usage.prompt_tokens;
            a.usage.completion_tokens += s.usage.completion_tokens;
            a.estimated |= s.estimated;
        }
        if run.route.is_some() {
            a.used = run.route.clone();
        }
        let Some(admitted) = admission.take() else { break };
        a.last_bill = Some(Bill { admission: admitted, route: run.route, settled, status: a.status() });
        a.text.push_str(&run.acc.text);
        let calls = turn::callable(run.acc.tool_calls());
        if calls.is_empty() || a.error.is_some() {
            // A stopped or failed step keeps its text; a tool turn records it as its last step.
            if !a.steps.is_empty() {
                a.steps.push(Step { text: run.acc.text, tool_calls: Vec::new() });
            }
            break;
        }
        // Calls the model made where it was told not to (the last step) are answered, not run.
        let may_run = choice == ToolChoice::Auto && !defs.is_empty();
        let done = run_tools(turn, step_no, &calls, may_run, out, &mut a.client_gone).await;
        a.tool_calls += done.len() as u32;
        messages.push(ChatMessage::assistant_calls(run.acc.text.clone(), calls));
        messages.extend(done.iter().map(|call| ChatMessage::tool_result(call.id.clone(), call.result.clone())));
        a.steps.push(Step { text: run.acc.text, tool_calls: done });
        if !may_run {
            break;
        }
    }
    if let Some(unused) = admission.take() {
        // No model call was made (the client left at once): the reservation is given back.
        a.last_bill = Some(Bill { admission: unused, route: None, settled: None, status: a.status() });
    }
    a
}

/// Stores the answer with the last call's bill in one batch, logs the turn and sends the
/// final event (`done`, or `error` with the answer as stored).
async fn finish(turn: &Turn, mut a: Answer, out: &mut SseOut) -> TurnResult {
    let status = a.status();
    let now = runtime::now_ms();
    let stored_steps = turn::stored_steps(&a.steps);
    let route = a.used.as_ref().or(turn.chain.first());
    let fin = messages::Final {
        message_id: &turn.assistant_message_id,
        content: &a.text,
        status: status.as_str(),
        model: route.map_or("", |r| r.name.as_str()),
        provider: a.used.as_ref().map(|r| r.provider.as_str()),
        prompt_tokens: a.usage.prompt_tokens,
        completion_tokens: a.usage.completion_tokens,
        is_usage_estimated: a.estimated,
        time_to_first_token_ms: a.first_token_at.map(|t| t.saturating_sub(turn.started_at)),
        duration_ms: now.saturating_sub(turn.started_at),
        steps: stored_steps.as_deref(),
    };
    let stored = match turn_db(&turn.env) {
        Ok(db) => {
            let also = match &a.last_bill {
                Some(bill) => bill.statements(&db, turn, now),
                None => Ok(Vec::new()),
            };
            match also {
                Ok(also) => {
                    let title = turn.auto_title.as_deref();
                    messages::finalize(&db, &turn.conversation_id, &turn.user.user_id, &fin, title, now, also).await
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let settled = stored.is_ok();
    let message = match stored {
        Ok(m) => m,
        Err(e) => {
            log_failure(&turn.request_id, &e);
            a.error.get_or_insert((TurnError::Storage, "the answer could not be stored".into()));
            None
        }
    };
    let turn_log = TurnLog {
        level: "info",
        msg: "turn",
        request_id: &turn.request_id,
        user_id: &turn.user.user_id,
        status: status.as_str(),
        model: fin.model,
        provider: fin.provider,
        time_to_first_token_ms: fin.time_to_first_token_ms,
        duration_ms: fin.duration_ms,
        completion_tokens: a.usage.completion_tokens,
        malformed_chunks: a.malformed,
        steps: a.model_calls,
        tool_calls: a.tool_calls,
        error_code: a.error.as_ref().map(|(k, _)| k.code()),
    };
    runtime::log(&turn_log.to_line());

    let _ = match (&a.error, &message) {
        (None, Some(m)) => out.json_event("done", &TurnDone { assistant_message: m.view() }).await,
        (Some((kind, text)), _) => {
            let error = EventError { code: kind.code(), message: text };
            let assistant_message = Some(message.as_ref().map(Message::view));
            out.json_event("error", &TurnFailed { error, assistant_message }).await
        }
        (None, None) => {
            let error = EventError { code: "internal_error", message: "the answer could not be stored" };
            out.json_event("error", &TurnFailed { error, assistant_message: None }).await
        }
    };
    if let (false, Some(bill)) = (settled, a.last_bill) {
        let used = bill.usage().0.total();
        bill.admission.settle(&turn.env, used).await;
    }
    TurnResult { message, error: a.error }
}

/// Ends a turn whose object died while it ran (its events, `hub`, are what had been sent):
/// the answer is stored as `error` with the text sent, its call billed for that text and the
/// prompt, its reservation and stream slot given back, and readers get the `error` event.
pub async fn interrupted(turn: Turn, admission: Admission, hub: Rc<Hub>) -> TurnResult {
    let text = hub.text();
    let settled = Settlement::interrupted(&text, turn.prompt_estimate);
    let route = turn.chain.first().cloned();
    let bill = Bill { admission, route: route.clone(), settled: Some(settled), status: FinalStatus::Error };
    let answer = Answer {
        text,
        steps: Vec::new(),
        usage: settled.usage,
        estimated: true,
        first_token_at: None,
        used: route,
        malformed: 0,
        model_calls: 1,
        tool_calls: 0,
        error: Some((TurnError::Interrupted, "the answer was interrupted: the service restarted while it ran".into())),
        client_gone: false,
        last_bill: Some(bill),
    };
    let mut out = SseOut { outlet: Outlet::hub(hub.clone(), Pacing::of(&turn.config)), hub };
    finish(&turn, answer, &mut out).await
}

/// The prompt estimate of step `step`: the turn's for the first, else that of the messages sent.
fn prompt_estimate(turn: &Turn, step: u32, messages: &[ChatMessage]) -> u64 {
    if step == 1 {
        turn.prompt_estimate
    } else {
        estimate_messages(messages) + turn::tools_estimate(&turn.tool_defs)
    }
}
