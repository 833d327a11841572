//! `POST /mcp`: the Model Context Protocol over Streamable HTTP, JSON responses only (no
//! server-to-client stream, so `GET /mcp` answers 405). The built-in tools, for the user of
//! the credential (an API key with the `tools` scope, or a session), through the same
//! validation and executors as everywhere else. Stateless: no session id is issued.

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{json_text, read_body, Failure, HandlerResult, Reply};
use crate::runtime::request::Header;
use crate::store::Db;
use crate::{runtime, tools};
use edgechat_core::log::failure_line;
use edgechat_core::mcp::{self, Body, Message, RpcError};
use edgechat_core::serde_json::Value;
use edgechat_core::{body, ApiError};

pub async fn mcp(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    // A browser page of another site may not drive the tools (DNS rebinding, CSRF): an Origin
    // header must be this server's or one CORS allows.
    if let Some(origin) = cx.header(Header::Origin) {
        if origin != cx.own_origin() && !cx.config.cors.grants(origin) {
            return Err(ApiError::forbidden("this Origin may not use the MCP server").into());
        }
    }
    if !body::is_json_content_type(cx.header(Header::ContentType)) {
        return Err(ApiError::unsupported_media_type().into());
    }
    let version = match mcp::header_version(cx.header(Header::McpProtocolVersion)) {
        Ok(v) => v,
        Err(e) => return Ok(rpc_failure(&e)),
    };
    let bytes = read_body(cx).await?;
    let (messages, batch) = match mcp::parse_body(&bytes, version) {
        Ok(Body::One(v)) => (vec![v], false),
        Ok(Body::Batch(vs)) => (vs, true),
        Err(e) => return Ok(rpc_failure(&e)),
    };
    let db = cx.db()?;
    let user_id = principal.user.user_id.clone();
    let mut answers = Vec::new();
    for value in messages {
        match mcp::classify(value) {
            Ok(Message::Request { id, method, params }) => {
                let answer = match request(cx, &db, &user_id, &method, params.as_ref(), batch).await {
                    Ok(result) => mcp::result_text(&id, &result),
                    Err(e) => mcp::error_text(&id, &e),
                };
                answers.push(answer);
            }
            // Notifications (`notifications/initialized`, `notifications/cancelled`, ...) and
            // responses need no answer; a call is never left running to be cancelled.
            Ok(Message::Notification { .. } | Message::Response) => {}
            // A lone invalid message is a bad HTTP request; in a batch it is one error entry.
            Err((id, e)) if !batch => return Ok(json_text(400, mcp::error_text(&id, &e))),
            Err((id, e)) => answers.push(mcp::error_text(&id, &e)),
        }
    }
    Ok(match (answers.len(), batch) {
        (0, _) => Reply::empty(202),
        (_, true) => json_text(200, format!("[{}]", answers.join(","))),
        _ => json_text(200, answers.remove(0)),
    })
}

/// A JSON-RPC error for the whole body (no message of it could be read): 400, id null.
fn rpc_failure(e: &RpcError) -> Reply {
    json_text(400, mcp::error_text(&Value::Null, e))
}

async fn request(
    cx: &Ctx<'_>,
    db: &Db,
    user_id: &str,
    method: &str,
    params: Option<&Value>,
    in_batch: bool,
) -> Result<String, RpcError> {
    match method {
        "initialize" if in_batch => Err(RpcError::new(mcp::INVALID_REQUEST, "initialize must not be part of a batch")),
        "initialize" => mcp::initialize(params),
        "ping" => Ok("{}".into()),
        "tools/list" => Ok(mcp::tools_list()),
        "tools/call" => {
            let (tool, arguments) = mcp::tool_call(params)?;
            match tools::run(db, user_id, cx.config.agent_caps, tool, &arguments).await {
                Ok(outcome) => Ok(mcp::tool_result(&outcome.text, outcome.is_error)),
                Err(e) => {
                    if let Failure::Platform { context, cause } = e.into_failure() {
                        runtime::log(&failure_line(cx.request_id, context, &cause));
                    }
                    Err(RpcError::internal())
                }
            }
        }
        _ => Err(RpcError::new(mcp::METHOD_NOT_FOUND, "method not found")),
    }
}
