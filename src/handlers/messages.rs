//! A chat turn: `POST /api/v1/conversations/{conversation_id}/messages` and
//! `POST .../messages/{message_id}/regenerate` start one (in the user's turn object), streamed
//! as SSE or answered as JSON when done, once per `Idempotency-Key`;
//! `GET .../messages/{message_id}/stream` reads it again from where a reader left off, and
//! `POST .../messages/{message_id}/cancel` stops it.

use crate::app::Ctx;
use crate::auth::{check_credential, Principal};
use crate::chat::TurnSpec;
use crate::handlers::conversations::{authenticate_for_conversation, not_found as conversation_not_found};
use crate::http::{json, read_body, read_json_bytes, to_json, AppError, HandlerResult, Reply};
use crate::objects::{self, StartMode, Started};
use crate::runtime::request::Header;
use crate::store::conversations::Messages;
use crate::store::{idempotency, messages as store};
use crate::{context, quota, runtime};
use edgechat_core::admission::{self, Admissible, Reserve};
use edgechat_core::agent::{self, turn};
use edgechat_core::body::parse_json;
use edgechat_core::chat::{
    derive_title, EventError, PostMessage, Regenerate, TurnAnswer, TurnDone, TurnFailed, TurnStarted,
};
use edgechat_core::conversations::{validate_content, Conversation, Message};
use edgechat_core::cursor::query_param;
use edgechat_core::ids::MessageId;
use edgechat_core::llm::context::estimate_messages;
use edgechat_core::llm::provider::Provider;
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::llm::sse::encode_event;
use edgechat_core::turns;
use edgechat_core::ApiError;

fn message_not_found() -> AppError {
    ApiError::not_found("message").into()
}

/// The route for `requested` (or the conversation's model) and its fallback chain; 422
/// listing the valid names when unknown.
fn model_chain(
    cx: &Ctx<'_>,
    requested: Option<&str>,
    conversation: &Conversation,
) -> Result<Vec<ModelRoute>, AppError> {
    let routes = &cx.config.routes;
    let route = routes.resolve_chat(Some(requested.unwrap_or(&conversation.model))).map_err(ApiError::validation)?;
    Ok(routes.chain(&route.name).into_iter().cloned().collect())
}

pub async fn post_message(cx: &mut Ctx<'_>) -> HandlerResult {
    // The credential first, then the body, so that the branch it names is read in the same
    // round trip as the session check; the body's errors are answered after authentication's.
    let checked = check_credential(cx).await?;
    let body = read_json_bytes::<PostMessage>(cx).await;
    let (req, raw) = match body {
        Ok((req, raw)) => (Ok(req), raw),
        Err(e) => (Err(e), Vec::new()),
    };
    // A new root branch reads no path: it continues nothing.
    let messages = match req.as_ref().map(|r| (r.named_parent(), r.new_root())) {
        Ok((Some(id), _)) if MessageId::parse(id).is_some() => Messages::PathTo(id),
        Ok((None, false)) => Messages::LatestPath,
        _ => Messages::None,
    };
    let (principal, found) = authenticate_for_conversation(cx, checked, messages).await?;
    let req = req?;
    let keyed = match keyed_turn(cx, &principal, &raw).await? {
        Keyed::Repeat(reply) => return Ok(reply),
        Keyed::New(key) => key,
    };
    validate_content(&req.content, &cx.config.conversation_limits)?;
    let (conversation, path) = found.ok_or_else(conversation_not_found)?;
    let chain = model_chain(cx, req.model.as_deref(), &conversation)?;

    // The path read ends at the named parent, or else at the latest message (none for a root).
    if req.named_parent().is_some() && path.is_empty() {
        return Err(message_not_found());
    }
    let parent_id = path.last().map(|m| m.message_id.clone());

    let now = runtime::now_ms();
    let user_message = Message {
        message_id: MessageId::new(runtime::random_bytes()?),
        conversation_id: conversation.conversation_id.clone(),
        parent_id,
        role: "user".into(),
        content: req.content,
        status: "complete".into(),
        model: Some(chain[0].name.clone()),
        provider: None,
        prompt_tokens: None,
        completion_tokens: None,
        is_usage_estimated: 0,
        time_to_first_token_ms: None,
        duration_ms: None,
        created_at: now,
        steps: None,
    };
    let auto_title = (conversation.title.is_empty() && path.is_empty()).then(|| derive_title(&user_message.content));
    let turn =
        NewTurn { conversation: &conversation, path: &path, question: user_message, store_question: true, auto_title };
    start_turn(cx, &principal, chain, turn, keyed).await
}

pub async fn regenerate(cx: &mut Ctx<'_>) -> HandlerResult {
    // As for a new message: the credential, the body, then the session check and the reads.
    let checked = check_credential(cx).await?;
    let raw = read_body(cx).await;
    let req = match &raw {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Regenerate::default()),
        Ok(bytes) => parse_json::<Regenerate>(cx.header(Header::ContentType), bytes).map_err(AppError::from),
        Err(_) => Err(ApiError::internal().into()),
    };
    let raw = raw?;
    let target_id = MessageId::parse(cx.param("message_id"));
    // The branch ending at the target: its last message is the target itself.
    let messages = target_id.as_deref().map_or(Messages::None, Messages::PathTo);
    let (principal, found) = authenticate_for_conversation(cx, checked, messages).await?;
    let req = req?;
    let keyed = match keyed_turn(cx, &principal, &raw).await? {
        Keyed::Repeat(reply) => return Ok(reply),
        Keyed::New(key) => key,
    };
    let (conversation, mut path) = found.ok_or_else(conversation_not_found)?;
    let target = path.last().ok_or_else(message_not_found)?;
    // Regenerating an answer makes a sibling of it (its question is the message before it);
    // regenerating a question answers it anew.
    if target.role == "assistant" {
        if target.parent_id.is_none() {
            return Err(ApiError::validation("this answer has no question to regenerate from").into());
        }
        path.pop();
    }
    let chain = model_chain(cx, req.model.as_deref(), &conversation)?;
    let question = path.last().cloned().ok_or_else(message_not_found)?;
    let turn = NewTurn { conversation: &conversation, path: &path, question, store_question: false, auto_title: None };
    start_turn(cx, &principal, chain, turn, keyed).await
}

/// A turn about to start: its conversation, the branch it continues, its question (stored
/// with the turn unless it already is), and the title the conversation gets if it has none.
struct NewTurn<'a> {
    conversation: &'a Conversation,
    path: &'a [Message],
    question: Message,
    store_question: bool,
    auto_title: Option<String>,
}

/// Stores the turn's messages, then starts it in the user's turn object, answering with its
/// events (SSE) or its outcome (JSON).
async fn start_turn(
    cx: &mut Ctx<'_>,
    principal: &Principal,
    chain: Vec<ModelRoute>,
    t: NewTurn<'_>,
    keyed: Option<NewKeyed>,
) -> HandlerResult {
    let (user, api_key_id) = (&principal.user, principal.api_key_id.clone());
    let conversation = t.conversation;
    // The fallbacks the plan allows; the reservation covers the longest answer of any of them.
    let config = cx.config.clone();
    let Admissible { chain, completion_tokens } = admission::chat(chain, config.plans.get(&user.plan));
    let route = &chain[0];
    // Workers AI models are offered no tools (its converter sends none).
    let tools = if chain[0].provider == Provider::WorkersAi { Vec::new() } else { conversation.offered_tools() };
    let request = context::Request {
        user,
        api_key_id: api_key_id.as_deref(),
        conversation,
        route,
        path: t.path,
        question: &t.question,
        tools_offered: !tools.is_empty(),
    };
    let context = context::build(cx, request).await;
    let tool_defs = agent::definitions(&tools);
    let prompt_estimate = estimate_messages(&context) + turn::tools_estimate(&tool_defs);
    let mode = if cx.header(Header::Accept).is_some_and(|a| a.contains("text/event-stream")) {
        StartMode::Sse
    } else {
        StartMode::Json
    };
    let reserve = Reserve { prompt_tokens: prompt_estimate, completion_tokens };
    let call = quota::Call::new(&route.name, "chat", api_key_id.as_deref(), reserve, mode == StartMode::Sse)?;
    let started_at = runtime::now_ms();
    let assistant_message_id = MessageId::new(runtime::random_bytes()?);
    let question = &t.question;
    let new_user = store::NewMessage {
        message_id: &question.message_id,
        parent_id: question.parent_id.as_deref(),
        content: &question.content,
        model: &route.name,
        created_at: question.created_at,
    };
    let placeholder = store::NewMessage {
        message_id: &assistant_message_id,
        parent_id: Some(&question.message_id),
        content: "",
        model: &route.name,
        created_at: started_at.max(question.created_at + 1),
    };
    let cap = cx.config.conversation_limits.messages_per_conversation;
    // The turn's messages (and its key) are stored in the batch that counts it, only if it is
    // admitted.
    let db = cx.db()?;
    let stored_user = t.store_question.then_some(&new_user);
    let reservation = call.reservation();
    let conversation_id = &conversation.conversation_id;
    let mut insert =
        store::turn_statements(&db, conversation_id, &user.user_id, stored_user, &placeholder, cap, &reservation)?;
    let turn_writes = insert.len();
    if let Some(k) = &keyed {
        let record = idempotency::NewKey {
            user_id: &user.user_id,
            key: &k.key,
            fingerprint: &k.fingerprint,
            conversation_id,
            assistant_message_id: &assistant_message_id,
            now: started_at,
            expired_before: started_at.saturating_sub(turns::IDEMPOTENCY_WINDOW_MS),
        };
        insert.extend(idempotency::record_statements(&db, &record)?);
    }
    let (admission, written) = match quota::admit_with(cx, user, call, insert).await {
        Ok(admitted) => admitted,
        Err(e) if idempotency::is_taken(&e) => return Err(turns::key_in_flight().into()),
        Err(e) => return Err(e),
    };
    if !store::turn_stored(&written[..turn_writes.min(written.len())]) {
        admission.settle(cx.env, 0).await;
        return Err(
            ApiError::conflict("message_limit_reached", format!("at most {cap} messages per conversation")).into()
        );
    }

    let expires_at = started_at / 1000 + turns::STREAM_TOKEN_TTL_SECONDS;
    let token = turns::stream_token(cx.config.jwt_secret()?, &user.user_id, &assistant_message_id, expires_at);
    let stream_url =
        format!("/api/v1/conversations/{conversation_id}/messages/{assistant_message_id}/stream?token={token}");
    let first_event = to_json(&TurnStarted {
        user_message: question.view(),
        assistant_message_id: &assistant_message_id,
        stream_url: &stream_url,
    })?;
    let spec = TurnSpec {
        request_id: cx.request_id.to_string(),
        user: user.clone(),
        api_key_id,
        conversation_id: conversation.conversation_id.clone(),
        assistant_message_id: assistant_message_id.clone(),
        chain: chain.iter().map(|r| r.name.clone()).collect(),
        context,
        prompt_estimate,
        completion_reserve: completion_tokens,
        tools: tools.iter().map(|t| t.name().to_owned()).collect(),
        auto_title: t.auto_title,
        started_at,
        admission,
        first_event,
    };
    match objects::start(cx.env, &spec, mode).await {
        Ok(started) => answer_started(started, question),
        Err(e) => {
            // The object never took the turn: its answer ends as an error, its hold is given back.
            abandon(cx, spec).await;
            Err(e)
        }
    }
}

/// The reply of a started turn: its event stream, or its outcome as JSON.
fn answer_started(started: Started, question: &Message) -> HandlerResult {
    match started {
        Started::Stream(resp) => Ok(event_stream(resp)),
        Started::Outcome(outcome) => match (outcome.error, outcome.assistant_message) {
            (None, Some(assistant)) => {
                json(201, &TurnAnswer { user_message: question.view(), assistant_message: assistant.view() })
            }
            (Some(e), _) => Err(objects::api_error(e.status, &e.code, e.message).into()),
            (None, None) => Err(ApiError::internal().into()),
        },
    }
}

/// The turn object's event stream, passed on as it comes.
fn event_stream(resp: worker::Response) -> Reply {
    Reply::fetched_event_stream(resp).with("x-accel-buffering", "no")
}

/// Ends a turn whose object could not be reached: the placeholder as an error, the admission
/// settled with nothing used.
async fn abandon(cx: &mut Ctx<'_>, spec: TurnSpec) {
    let Ok(db) = cx.db() else { return };
    let now = runtime::now_ms();
    let fin = store::Final {
        message_id: &spec.assistant_message_id,
        content: "",
        status: "error",
        model: spec.chain.first().map_or("", String::as_str),
        provider: None,
        prompt_tokens: 0,
        completion_tokens: 0,
        is_usage_estimated: false,
        time_to_first_token_ms: None,
        duration_ms: now.saturating_sub(spec.started_at),
        steps: None,
    };
    let settle = spec.admission.settle_statements(&db, 0).unwrap_or_default();
    let _ = store::finalize(&db, &spec.conversation_id, &spec.user.user_id, &fin, None, now, settle).await;
}

/// A send's `Idempotency-Key` that names no turn yet.
struct NewKeyed {
    key: String,
    fingerprint: String,
}

enum Keyed {
    /// The send names no key, or a new one.
    New(Option<NewKeyed>),
    /// The key's turn, answered again.
    Repeat(Reply),
}

/// With an `Idempotency-Key`: the turn it already started (its events from the start or from
/// `Last-Event-ID`, or its JSON answer), 422 if that was another request, else the key to
/// record with the new turn.
async fn keyed_turn(cx: &mut Ctx<'_>, principal: &Principal, body: &[u8]) -> Result<Keyed, AppError> {
    let Some(raw) = cx.header(Header::IdempotencyKey) else { return Ok(Keyed::New(None)) };
    let key = turns::idempotency_key(raw)?.to_owned();
    let path = edgechat_core::url::path(&cx.head.url).to_owned();
    let fingerprint = turns::fingerprint(&path, body);
    let user_id = &principal.user.user_id;
    let since = runtime::now_ms().saturating_sub(turns::IDEMPOTENCY_WINDOW_MS);
    let db = cx.db()?;
    let Some(found) = idempotency::find(&db, user_id, &key, since).await? else {
        return Ok(Keyed::New(Some(NewKeyed { key, fingerprint })));
    };
    if !edgechat_core::secret::ct_eq(found.fingerprint.as_bytes(), fingerprint.as_bytes()) {
        return Err(turns::key_reused().into());
    }
    let answer = store::find(&db, user_id, &found.assistant_message_id).await?.ok_or_else(message_not_found)?;
    if cx.header(Header::Accept).is_some_and(|a| a.contains("text/event-stream")) {
        let after = turns::resume_point(cx.header(Header::LastEventId), None)?;
        return replay(cx, user_id, &answer, after).await.map(Keyed::Repeat);
    }
    // JSON: the turn's answer once it has ended.
    let answer = if answer.status == "streaming" {
        objects::wait(cx.env, user_id, &answer.message_id).await?;
        store::find(&db, user_id, &found.assistant_message_id).await?.ok_or_else(message_not_found)?
    } else {
        answer
    };
    let question = match answer.parent_id.as_deref() {
        Some(id) => store::find(&db, user_id, id).await?.ok_or_else(message_not_found)?,
        None => return Err(message_not_found()),
    };
    json(201, &TurnAnswer { user_message: question.view(), assistant_message: answer.view() }).map(Keyed::Repeat)
}

/// `GET .../messages/{message_id}/stream`: the answer's events after `Last-Event-ID` (or
/// `?after=`), then live until the turn ends.
pub async fn stream_turn(cx: &mut Ctx<'_>) -> HandlerResult {
    if cx.header(Header::Authorization).is_none() {
        if let Some(token) = query_param(&cx.query(), "token") {
            return stream_by_token(cx, &token).await;
        }
    }
    let (principal, answer) = owned_answer(cx).await?;
    let after = turns::resume_point(cx.header(Header::LastEventId), query_param(&cx.query(), "after").as_deref())?;
    replay(cx, &principal.user.user_id, &answer, after).await
}

/// The caller and their answer named by the path (404 for another user's or an unknown one,
/// 400 for a question), read with the session check.
async fn owned_answer(cx: &mut Ctx<'_>) -> Result<(Principal, Message), AppError> {
    let checked = check_credential(cx).await?;
    let target = MessageId::parse(cx.param("message_id"));
    let messages = target.as_deref().map_or(Messages::None, Messages::PathTo);
    let (principal, found) = authenticate_for_conversation(cx, checked, messages).await?;
    let (_, mut path) = found.ok_or_else(conversation_not_found)?;
    let answer = path.pop().ok_or_else(message_not_found)?;
    if answer.role != "assistant" {
        return Err(not_an_answer());
    }
    Ok((principal, answer))
}

/// The stream route with the turn's own token (`?token=`, from its `message` event) instead
/// of a credential: that user's answer with that id, and nothing else, for an hour.
async fn stream_by_token(cx: &mut Ctx<'_>, token: &str) -> HandlerResult {
    let target = MessageId::parse(cx.param("message_id")).ok_or_else(message_not_found)?;
    let now = runtime::now_ms() / 1000;
    let user_id = turns::check_stream_token(cx.config.jwt_secret()?, token, &target, now)
        .ok_or_else(|| ApiError::unauthorized("the stream token is invalid or has expired"))?
        .to_owned();
    cx.user_id = Some(user_id.clone());
    let db = cx.db()?;
    let answer = store::find(&db, &user_id, &target).await?;
    let answer =
        answer.filter(|m| m.conversation_id.as_str() == cx.param("conversation_id")).ok_or_else(message_not_found)?;
    let after = turns::resume_point(cx.header(Header::LastEventId), query_param(&cx.query(), "after").as_deref())?;
    replay(cx, &user_id, &answer, after).await
}

/// The answer's events after `after`, from its turn object; for a turn whose events are no
/// longer kept, its final event made from the stored answer.
async fn replay(cx: &mut Ctx<'_>, user_id: &str, answer: &Message, after: u64) -> HandlerResult {
    match objects::stream(cx.env, user_id, &answer.message_id, after).await {
        Ok(resp) => Ok(event_stream(resp)),
        Err(e) if e.api_code() == Some("turn_not_kept") => {
            let view = answer.view();
            let (name, data) = if answer.status == "complete" || answer.status == "cancelled" {
                ("done", to_json(&TurnDone { assistant_message: view })?)
            } else {
                let message = "the answer did not finish";
                let error = EventError { code: "turn_interrupted", message };
                ("error", to_json(&TurnFailed { error, assistant_message: Some(Some(view)) })?)
            };
            let body = encode_event(name, after + 1, &data);
            Ok(Reply::bytes(200, "text/event-stream; charset=utf-8", body.into_bytes()))
        }
        Err(e) => Err(e),
    }
}

/// `POST .../messages/{message_id}/cancel`: stops the turn wherever it runs and answers with
/// the answer as stored (cancelled, or its final state if it had already ended).
pub async fn cancel_turn(cx: &mut Ctx<'_>) -> HandlerResult {
    let (principal, answer) = owned_answer(cx).await?;
    let user_id = &principal.user.user_id;
    let answer = if answer.status == "streaming" {
        objects::cancel(cx.env, user_id, &answer.message_id).await?;
        let db = cx.db()?;
        store::find(&db, user_id, &answer.message_id).await?.ok_or_else(message_not_found)?
    } else {
        answer
    };
    json(200, &TurnDone { assistant_message: answer.view() })
}

fn not_an_answer() -> AppError {
    ApiError::bad_request("not_an_answer", "this message is a question: only an answer has a turn").into()
}
