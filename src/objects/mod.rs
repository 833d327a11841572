//! Durable Objects, and what the Worker asks of them. A user's chat turns run in their turn
//! object ([`turns::UserTurns`], binding `TURNS`, named by the user id): the Worker hands it a
//! turn to start, a reader to attach, or a stop, over the object's fetch.

pub mod hub;
pub mod turns;

use crate::chat::TurnSpec;
use crate::http::AppError;
use edgechat_core::conversations::Message;
use edgechat_core::cursor::query_param;
use edgechat_core::serde_json;
use edgechat_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{Env, Method, Request, RequestInit, Response, ResponseBody};

/// The binding of the turn objects.
pub const TURNS: &str = "TURNS";
/// How often a running turn's object wakes itself (an alarm): it stays in memory while the
/// turn runs, and a restarted object ends the turn it lost without waiting for a request.
const ALARM_EVERY_MS: u64 = 10_000;
/// The object's own URL space (never reachable from outside).
const BASE: &str = "https://turns.internal";

/// How the request that starts a turn wants its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Server-sent events, as they are produced.
    Sse,
    /// One JSON outcome when the turn has ended.
    Json,
}

/// A call of the Worker on a turn object.
enum Call {
    Start {
        spec: Box<TurnSpec>,
        /// The spec as sent, kept as is in the object's storage.
        spec_json: String,
        mode: StartMode,
    },
    Stream {
        message_id: String,
        after: u64,
    },
    Cancel {
        message_id: String,
    },
    Wait {
        message_id: String,
    },
    /// The user's account is being deleted: their turns stop and the object keeps nothing.
    Forget,
}

impl Call {
    async fn read(req: &mut Request) -> Result<Self, ApiError> {
        // The raw URL: workers-rs's parsed one costs the `url` crate.
        let url = req.inner().url();
        let query = edgechat_core::url::query(&url);
        let message_id = || query_param(query, "message_id").unwrap_or_default();
        match (req.method(), edgechat_core::url::path(&url)) {
            (Method::Post, "/start") => {
                let mode = if query_param(query, "mode").as_deref() == Some("json") {
                    StartMode::Json
                } else {
                    StartMode::Sse
                };
                let spec_json = req.text().await.map_err(|_| ApiError::internal())?;
                let spec = serde_json::from_str(&spec_json).map_err(|_| ApiError::internal())?;
                Ok(Call::Start { spec: Box::new(spec), spec_json, mode })
            }
            (Method::Get, "/stream") => {
                let after = query_param(query, "after").and_then(|a| a.parse().ok()).unwrap_or(0);
                Ok(Call::Stream { message_id: message_id(), after })
            }
            (Method::Post, "/cancel") => Ok(Call::Cancel { message_id: message_id() }),
            (Method::Get, "/wait") => Ok(Call::Wait { message_id: message_id() }),
            (Method::Post, "/forget") => Ok(Call::Forget),
            _ => Err(ApiError::route_not_found()),
        }
    }
}

/// The end of a turn as a JSON-mode request gets it: the stored answer, and the error when the
/// turn failed.
#[derive(Serialize, Deserialize)]
pub struct TurnOutcome {
    pub assistant_message: Option<Message>,
    pub error: Option<OutcomeError>,
}

#[derive(Serialize, Deserialize)]
pub struct OutcomeError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Serialize, Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

/// 404 from the object: it keeps no events of that turn (finished more than a day ago, or
/// started before turns ran in objects).
fn turn_not_kept() -> ApiError {
    ApiError::new(404, "turn_not_kept", "this turn's events are no longer kept")
}

/// The object's answer for an error: the API's status, code and message, for the Worker to
/// render.
fn error_answer(e: &ApiError) -> worker::Result<Response> {
    let body = ErrorBody { error: ErrorFields { code: e.code.to_owned(), message: e.message.clone() } };
    Ok(Response::from_json(&body)?.with_status(e.status))
}

fn sse_response(readable: web_sys::ReadableStream) -> Result<Response, ApiError> {
    let resp = Response::from_body(ResponseBody::Stream(readable)).map_err(|_| ApiError::internal())?;
    let _ = resp.headers().set("content-type", "text/event-stream");
    Ok(resp)
}

/// The turn object of `user_id`.
fn stub(env: &Env, user_id: &str) -> Result<worker::Stub, AppError> {
    let ns = env.durable_object(TURNS).map_err(|_| AppError::platform("binding", format!("{TURNS} is not bound")))?;
    ns.get_by_name(user_id).map_err(|e| AppError::platform("turn object", e.to_string()))
}

async fn call(
    env: &Env,
    user_id: &str,
    method: Method,
    path_and_query: &str,
    body: Option<String>,
) -> Result<Response, AppError> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    let req = Request::new_with_init(&format!("{BASE}{path_and_query}"), &init)
        .map_err(|e| AppError::platform("turn object", e.to_string()))?;
    let mut resp = stub(env, user_id)?
        .fetch_with_request(req)
        .await
        .map_err(|e| AppError::platform("turn object", e.to_string()))?;
    if (200..300).contains(&resp.status_code()) {
        return Ok(resp);
    }
    let status = resp.status_code();
    let body: ErrorBody = resp.json().await.map_err(|e| AppError::platform("turn object", e.to_string()))?;
    Err(api_error(status, &body.error.code, body.error.message).into())
}

/// The codes an object answers with: its own errors, and the ways a turn ends in error.
const OBJECT_CODES: &[&str] = &[
    "invalid_event_id",
    "turn_not_kept",
    "turn_exists",
    "route_not_found",
    "upstream_timeout",
    "upstream_error",
    "turn_interrupted",
    "rate_limited",
    "token_budget_exceeded",
    "too_many_streams",
    "model_not_in_plan",
];

/// An error the object sent back as the API's (its code one of [`OBJECT_CODES`], else
/// `internal_error`).
pub fn api_error(status: u16, code: &str, message: String) -> ApiError {
    let code = OBJECT_CODES.iter().find(|c| **c == code).copied().unwrap_or("internal_error");
    ApiError::new(status, code, message)
}

/// Starts `spec`'s turn in its user's object: the first reader's event stream, or in JSON
/// mode the outcome once the turn has ended.
pub async fn start(env: &Env, spec: &TurnSpec, mode: StartMode) -> Result<Started, AppError> {
    let body = serde_json::to_string(spec).map_err(|e| AppError::platform("turn spec", e.to_string()))?;
    let path = match mode {
        StartMode::Sse => "/start",
        StartMode::Json => "/start?mode=json",
    };
    let mut resp = call(env, &spec.user.user_id, Method::Post, path, Some(body)).await?;
    match mode {
        StartMode::Sse => Ok(Started::Stream(resp)),
        StartMode::Json => {
            resp.json().await.map(Started::Outcome).map_err(|e| AppError::platform("turn object", e.to_string()))
        }
    }
}

pub enum Started {
    Stream(Response),
    Outcome(TurnOutcome),
}

/// A reader of a turn from after event `after`: its event stream. 400 for an event the turn has
/// not sent; 404 `turn_not_kept` when the object has no record of the turn.
pub async fn stream(env: &Env, user_id: &str, message_id: &str, after: u64) -> Result<Response, AppError> {
    let path = format!("/stream?message_id={message_id}&after={after}");
    call(env, user_id, Method::Get, &path, None).await
}

/// Stops the user's running turns and deletes everything their object keeps (the account is
/// being deleted).
pub async fn forget(env: &Env, user_id: &str) -> Result<(), AppError> {
    call(env, user_id, Method::Post, "/forget", None).await.map(|_| ())
}

/// Resolves once the turn (if it runs) has stored its answer.
pub async fn wait(env: &Env, user_id: &str, message_id: &str) -> Result<(), AppError> {
    call(env, user_id, Method::Get, &format!("/wait?message_id={message_id}"), None).await.map(|_| ())
}

/// Stops a turn if it runs, answering once its answer is stored.
pub async fn cancel(env: &Env, user_id: &str, message_id: &str) -> Result<(), AppError> {
    call(env, user_id, Method::Post, &format!("/cancel?message_id={message_id}"), None).await.map(|_| ())
}
