//! `POST /api/v1/conversations/{conversation_id}/messages` and
//! `POST .../messages/{message_id}/regenerate`: a chat turn, streamed as SSE or answered as
//! JSON when done.

use crate::app::Ctx;
use crate::auth::check_credential;
use crate::chat::{self, Sink, Turn, TurnResult};
use crate::handlers::conversations::{authenticate_for_conversation, not_found as conversation_not_found};
use crate::http::{json, read_body, read_json, to_json, AppError, HandlerResult, Reply};
use crate::runtime::request::Header;
use crate::runtime::streams;
use crate::store::conversations::Messages;
use crate::store::messages as store;
use crate::{context, quota, runtime};
use edgechat_core::accounts::User;
use edgechat_core::admission::{self, Admissible, Reserve};
use edgechat_core::agent::{self, turn};
use edgechat_core::body::parse_json;
use edgechat_core::chat::{derive_title, PostMessage, Regenerate, TurnAnswer, TurnStarted};
use edgechat_core::conversations::{validate_content, Conversation, Message};
use edgechat_core::ids::MessageId;
use edgechat_core::llm::context::estimate_messages;
use edgechat_core::llm::provider::Provider;
use edgechat_core::llm::routing::ModelRoute;
use edgechat_core::ApiError;
use futures_channel::oneshot;

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
    let route = routes.resolve(Some(requested.unwrap_or(&conversation.model))).map_err(ApiError::validation)?;
    Ok(routes.chain(&route.name).into_iter().cloned().collect())
}

pub async fn post_message(cx: &mut Ctx<'_>) -> HandlerResult {
    // The credential first, then the body, so that the branch it names is read in the same
    // round trip as the session check; the body's errors are answered after authentication's.
    let checked = check_credential(cx).await?;
    let req = read_json::<PostMessage>(cx).await;
    let messages = match req.as_ref().map(|r| r.parent_id.as_deref()) {
        Ok(Some(id)) if MessageId::parse(id).is_some() => Messages::PathTo(id),
        Ok(None) => Messages::LatestPath,
        _ => Messages::None,
    };
    let (principal, found) = authenticate_for_conversation(cx, checked, messages).await?;
    let req = req?;
    validate_content(&req.content, &cx.config.conversation_limits)?;
    let (conversation, path) = found.ok_or_else(conversation_not_found)?;
    let chain = model_chain(cx, req.model.as_deref(), &conversation)?;

    // The path read ends at the named parent, or else at the latest message.
    if req.parent_id.is_some() && path.is_empty() {
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
    start_turn(cx, &conversation, &principal.user, principal.api_key_id, chain, &path, user_message, true, auto_title)
        .await
}

pub async fn regenerate(cx: &mut Ctx<'_>) -> HandlerResult {
    // As for a new message: the credential, the body, then the session check and the reads.
    let checked = check_credential(cx).await?;
    let req = match read_body(cx).await {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Regenerate::default()),
        Ok(bytes) => parse_json::<Regenerate>(cx.header(Header::ContentType), &bytes).map_err(AppError::from),
        Err(e) => Err(e),
    };
    let target_id = MessageId::parse(cx.param("message_id"));
    // The branch ending at the target: its last message is the target itself.
    let messages = target_id.as_deref().map_or(Messages::None, Messages::PathTo);
    let (principal, found) = authenticate_for_conversation(cx, checked, messages).await?;
    let req = req?;
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
    start_turn(cx, &conversation, &principal.user, principal.api_key_id, chain, &path, question, false, None).await
}

/// Stores the turn's messages, then runs it under `wait_until`, answering SSE or JSON.
#[allow(clippy::too_many_arguments)]
async fn start_turn(
    cx: &mut Ctx<'_>,
    conversation: &Conversation,
    user: &User,
    api_key_id: Option<String>,
    chain: Vec<ModelRoute>,
    path: &[Message],
    user_message: Message,
    store_user_message: bool,
    auto_title: Option<String>,
) -> HandlerResult {
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
        path,
        question: &user_message,
        tools_offered: !tools.is_empty(),
    };
    let context = context::build(cx, request).await;
    let tool_defs = agent::definitions(&tools);
    let prompt_estimate = estimate_messages(&context) + turn::tools_estimate(&tool_defs);
    let wants_sse = cx.header(Header::Accept).is_some_and(|a| a.contains("text/event-stream"));
    let reserve = Reserve { prompt_tokens: prompt_estimate, completion_tokens };
    let call = quota::Call::new(&route.name, "chat", api_key_id.as_deref(), reserve, wants_sse)?;
    let started_at = runtime::now_ms();
    let assistant_message_id = MessageId::new(runtime::random_bytes()?);
    let new_user = store::NewMessage {
        message_id: &user_message.message_id,
        parent_id: user_message.parent_id.as_deref(),
        content: &user_message.content,
        model: &route.name,
        created_at: user_message.created_at,
    };
    let placeholder = store::NewMessage {
        message_id: &assistant_message_id,
        parent_id: Some(&user_message.message_id),
        content: "",
        model: &route.name,
        created_at: started_at.max(user_message.created_at + 1),
    };
    let cap = cx.config.conversation_limits.messages_per_conversation;
    // The turn's messages are stored in the batch that counts it, only if it is admitted.
    let db = cx.db()?;
    let stored_user = store_user_message.then_some(&new_user);
    let reservation = call.reservation();
    let conversation_id = &conversation.conversation_id;
    let insert =
        store::turn_statements(&db, conversation_id, &user.user_id, stored_user, &placeholder, cap, &reservation)?;
    let (admission, written) = quota::admit_with(cx, user, call, insert).await?;
    if !store::turn_stored(&written) {
        admission.settle(cx.env, 0).await;
        return Err(
            ApiError::conflict("message_limit_reached", format!("at most {cap} messages per conversation")).into()
        );
    }

    let lease = admission.lease(cx.env);
    let turn = Turn {
        env: cx.env.clone(),
        config: cx.config.clone(),
        request_id: cx.request_id.to_string(),
        user: user.clone(),
        api_key_id,
        conversation_id: conversation.conversation_id.clone(),
        assistant_message_id: assistant_message_id.clone(),
        chain,
        context,
        prompt_estimate,
        completion_reserve: completion_tokens,
        tools,
        tool_defs,
        auto_title,
        started_at,
        lease: lease.clone(),
    };
    if wants_sse {
        let (readable, body) = streams::body_pipe(&cx.req);
        let first_event =
            to_json(&TurnStarted { user_message: user_message.view(), assistant_message_id: &assistant_message_id })?;
        cx.worker_ctx.wait_until(quota::renewing(lease, chat::run(turn, admission, Sink::Sse { body, first_event })));
        return Ok(Reply::event_stream(readable).with("x-accel-buffering", "no"));
    }
    let (tx, rx) = oneshot::channel::<TurnResult>();
    cx.worker_ctx.wait_until(quota::renewing(lease, chat::run(turn, admission, Sink::Json(tx))));
    let result = rx.await.map_err(|_| AppError::platform("chat turn", "the turn ended without a result"))?;
    match (result.error, result.message) {
        (None, Some(assistant)) => {
            json(201, &TurnAnswer { user_message: user_message.view(), assistant_message: assistant.view() })
        }
        (Some((kind, message)), _) => Err(ApiError::new(kind.status(), kind.code(), message).into()),
        (None, None) => Err(ApiError::internal().into()),
    }
}
