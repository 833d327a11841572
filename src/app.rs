//! The request pipeline every route goes through: request id, CORS, body cap, routing,
//! dispatch, the one error-to-JSON mapping, and the one log line.

use crate::http::{
    anthropic_error_response, error_response, openai_error_response, AppError, Failure, HandlerResult, Reply,
};
use crate::runtime::request::{Header, RequestHead};
use crate::runtime::response::build_response;
use crate::store::Db;
use crate::{bindings, gateway, handlers, runtime};
use edgechat_core::config::Config;
use edgechat_core::gateway::OpenAiError;
use edgechat_core::log::{failure_line, RequestLog};
use edgechat_core::routes::{self, Matched, Route};
use edgechat_core::scopes::{self, Access};
use edgechat_core::{body, request_id, security, ApiError};
use std::rc::Rc;
use worker::{Context, Env};

/// Everything a handler may use for one request.
pub struct Ctx<'a> {
    pub req: web_sys::Request,
    /// Method, URL and the headers the app reads, read once.
    pub head: RequestHead,
    pub env: &'a Env,
    pub worker_ctx: &'a Context,
    pub config: Rc<Config>,
    pub request_id: &'a str,
    pub params: Vec<(&'static str, String)>,
    /// The matched route, set before its handler runs: authentication checks an API key's
    /// scopes against it (`scopes::authorize`), once, for every route.
    pub route: Option<Route>,
    /// Set by authentication so the log line can name the user.
    pub user_id: Option<String>,
    db: Option<Rc<Db>>,
}

impl Ctx<'_> {
    /// This request's D1 handle (created on first use; counts rows read for the log line).
    pub fn db(&mut self) -> Result<Rc<Db>, AppError> {
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        let db = Rc::new(Db::new(bindings::d1(self.env)?));
        self.db = Some(db.clone());
        Ok(db)
    }

    /// The request's query string (without `?`).
    pub fn query(&self) -> String {
        edgechat_core::url::query(&self.head.url).to_string()
    }

    /// The request URL's own origin (`scheme://host[:port]`).
    pub fn own_origin(&self) -> String {
        edgechat_core::url::origin(&self.head.url).to_string()
    }

    /// A request header.
    pub fn header(&self, header: Header) -> Option<&str> {
        self.head.header(header)
    }

    /// A path parameter captured by the route pattern.
    pub fn param(&self, name: &str) -> &str {
        self.params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str())
    }
}

pub async fn handle(req: web_sys::Request, env: Env, worker_ctx: Context) -> web_sys::Response {
    let started = runtime::now_ms();
    let head = RequestHead::read(&req);
    let request_id = match request_id::accept(head.header(Header::RequestId)) {
        Some(id) => id.to_string(),
        None => runtime::new_request_id(),
    };
    let config = bindings::config(&env);
    let method = head.method.clone();
    let path = edgechat_core::url::path(&head.url).to_string();
    let origin = head.header(Header::Origin).map(str::to_string);

    let mut cx = Ctx {
        req,
        head,
        env: &env,
        worker_ctx: &worker_ctx,
        config: config.clone(),
        request_id: &request_id,
        params: Vec::new(),
        route: None,
        user_id: None,
        db: None,
    };
    let (pattern, result) = route(&mut cx, &method, &path).await;
    let user_id = cx.user_id.take();
    let (d1_rows_read, d1_rows_written) = cx.db.as_ref().map_or((0, 0), |d| (d.rows_read(), d.rows_written()));

    // `/v1/*` is the OpenAI-compatible surface: its errors take OpenAI's shape, except on
    // the Anthropic Messages routes (`/v1/messages*`), whose errors take Anthropic's.
    let openai_shape = path.starts_with("/v1/");
    let anthropic_shape = path == "/v1/messages" || path.starts_with("/v1/messages/");
    let gateway_error = |err: &OpenAiError, extra: &[(&'static str, String)]| match anthropic_shape {
        true => anthropic_error_response(err, extra),
        false => openai_error_response(err, extra),
    };
    let api_error = |err: ApiError| {
        if openai_shape {
            gateway_error(&OpenAiError::from(&err), &err.headers)
        } else {
            error_response(&err, &request_id)
        }
    };
    let (reply, error_code) = match result.map_err(AppError::into_failure) {
        Ok(reply) => (reply, None),
        Err(Failure::Api(err)) => (api_error(err.clone()), Some(err.code)),
        Err(Failure::OpenAi(err)) => (gateway_error(&err, &[]), Some(err.code.unwrap_or(err.kind))),
        Err(Failure::Platform { context, cause }) => {
            runtime::log(&failure_line(&request_id, context, &cause));
            let err = ApiError::internal();
            (api_error(err.clone()), Some(err.code))
        }
    };
    let cors = config.cors.response_headers(origin.as_deref());
    let mut headers: Vec<(&str, &str)> = reply.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    headers.push(("x-request-id", &request_id));
    if anthropic_shape {
        // Where Anthropic's SDKs read a response's id (`requestID` of their errors).
        headers.push(("request-id", &request_id));
    }
    headers.extend(security::HEADERS.iter().copied());
    headers.extend(cors.iter().map(|(n, v)| (*n, v.as_str())));
    runtime::log(
        &RequestLog {
            level: "info",
            msg: "request",
            request_id: &request_id,
            method: &method,
            route: pattern,
            status: reply.status,
            duration_ms: runtime::now_ms().saturating_sub(started),
            user_id: user_id.as_deref(),
            error_code,
            d1_rows_read,
            d1_rows_written,
            wasm_memory_kib: runtime::wasm_memory_kib(),
        }
        .to_line(),
    );
    build_response(reply.status, reply.payload, &headers)
}

type Handler<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = HandlerResult> + 'a>>;

/// Preflight, body cap and route resolution, then the handler.
async fn route(cx: &mut Ctx<'_>, method: &str, path: &str) -> (Option<&'static str>, HandlerResult) {
    if method == "OPTIONS" {
        if let (Some(origin), Some(wanted)) = (cx.header(Header::Origin), cx.header(Header::PreflightMethod)) {
            return (routes::pattern_of(path), preflight(cx, origin, wanted, path));
        }
    }
    // The cap applies to every request, routed or not, before anything else is decided; on a
    // route that needs a credential, right after the credential (`auth::check_credential`), so
    // that a caller without one learns nothing but 401.
    let resolved = routes::resolve(method, path);
    let credential_first = matches!(&resolved, Ok(m) if scopes::access(m.route) != Access::Public);
    if !credential_first {
        if let Err(err) = body::check_declared_length(cx.header(Header::ContentLength), cx.config.max_body_bytes) {
            return (routes::pattern_of(path), Err(err.into()));
        }
    }
    match resolved {
        Ok(matched) => (Some(matched.pattern), dispatch(cx, matched).await),
        // Anything else a browser asks for is the chat page's static files.
        Err((None, _)) if matches!(method, "GET" | "HEAD") && security::is_page_path(path) => {
            (Some("(static)"), handlers::assets::serve(cx).await)
        }
        Err((pattern, err)) => (pattern, Err(err.into())),
    }
}

fn preflight(cx: &Ctx<'_>, origin: &str, wanted: &str, path: &str) -> HandlerResult {
    if routes::pattern_of(path).is_none() {
        return Err(ApiError::route_not_found().into());
    }
    let grants = cx.config.cors.preflight(origin, wanted, cx.header(Header::PreflightHeaders))?;
    Ok(Reply { headers: grants, ..Reply::empty(204) })
}

async fn dispatch(cx: &mut Ctx<'_>, matched: Matched<'_>) -> HandlerResult {
    cx.params = matched.params.iter().map(|(n, v)| (*n, v.to_string())).collect();
    cx.route = Some(matched.route);
    if !matches!(matched.route, Route::Health | Route::HealthReady) {
        cx.config.check()?;
    }
    // Each handler's future is its own boxed state machine, polled through one pointer: nested
    // in this one, every handler's states and drop paths were inlined into the request's
    // future (1.3 KB gzip more wasm).
    let handler: Handler<'_> = match matched.route {
        Route::Health => return handlers::health::health(cx),
        Route::HealthReady => Box::pin(handlers::health::ready(cx)),
        Route::Register => Box::pin(handlers::auth::register(cx)),
        Route::Login => Box::pin(handlers::auth::login(cx)),
        Route::Refresh => Box::pin(handlers::auth::refresh(cx)),
        Route::Logout => Box::pin(handlers::auth::logout(cx)),
        Route::GetMe => Box::pin(handlers::users::get_me(cx)),
        Route::UpdateMe => Box::pin(handlers::users::update_me(cx)),
        Route::DeleteMe => Box::pin(handlers::users::delete_me(cx)),
        Route::CreateKey => Box::pin(handlers::keys::create_key(cx)),
        Route::ListKeys => Box::pin(handlers::keys::list_keys(cx)),
        Route::DeleteKey => Box::pin(handlers::keys::delete_key(cx)),
        Route::CreateConversation => Box::pin(handlers::conversations::create_conversation(cx)),
        Route::ListConversations => Box::pin(handlers::conversations::list_conversations(cx)),
        Route::GetConversation => Box::pin(handlers::conversations::get_conversation(cx)),
        Route::UpdateConversation => Box::pin(handlers::conversations::update_conversation(cx)),
        Route::DeleteConversation => Box::pin(handlers::conversations::delete_conversation(cx)),
        Route::ListMessages => Box::pin(handlers::conversations::list_messages(cx)),
        Route::PostMessage => Box::pin(handlers::messages::post_message(cx)),
        Route::Regenerate => Box::pin(handlers::messages::regenerate(cx)),
        Route::StreamTurn => Box::pin(handlers::messages::stream_turn(cx)),
        Route::CancelTurn => Box::pin(handlers::messages::cancel_turn(cx)),
        Route::ListModels => Box::pin(gateway::list_models(cx)),
        Route::GetModel => Box::pin(gateway::get_model(cx)),
        Route::ChatCompletions => Box::pin(gateway::chat_completions(cx)),
        Route::Responses => Box::pin(gateway::responses(cx)),
        Route::Embeddings => Box::pin(gateway::embeddings::create(cx)),
        Route::Messages => Box::pin(gateway::messages(cx)),
        Route::CountTokens => Box::pin(gateway::count_tokens(cx)),
        Route::StripeWebhook => Box::pin(handlers::webhooks::stripe(cx)),
        Route::GetUsage => Box::pin(handlers::usage::get_usage(cx)),
        Route::AdminListUsers => Box::pin(handlers::admin::list_users(cx)),
        Route::AdminUpdateUser => Box::pin(handlers::admin::update_user(cx)),
        Route::AdminUsage => Box::pin(handlers::admin::usage(cx)),
        Route::AdminWebhookEvents => Box::pin(handlers::admin::webhook_events(cx)),
        Route::AdminAudit => Box::pin(handlers::admin::audit(cx)),
        Route::CreateTask => Box::pin(handlers::tasks::create_task(cx)),
        Route::ListTasks => Box::pin(handlers::tasks::list_tasks(cx)),
        Route::GetTask => Box::pin(handlers::tasks::get_task(cx)),
        Route::UpdateTask => Box::pin(handlers::tasks::update_task(cx)),
        Route::DeleteTask => Box::pin(handlers::tasks::delete_task(cx)),
        Route::CreateMemory => Box::pin(handlers::memories::create_memory(cx)),
        Route::ListMemories => Box::pin(handlers::memories::list_memories(cx)),
        Route::DeleteMemory => Box::pin(handlers::memories::delete_memory(cx)),
        Route::Mcp => Box::pin(handlers::mcp::mcp(cx)),
        Route::GetLimits => return handlers::health::limits(cx),
        Route::GenerateTitle => Box::pin(handlers::titles::generate_title(cx)),
    };
    handler.await
}
