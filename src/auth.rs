//! Authentication at the edge: a bearer access token (JWT plus a live-session lookup) or an
//! API key, resolved to the user it acts for.

use crate::app::Ctx;
use crate::http::AppError;
use crate::platform::d1::{D1PreparedStatement, D1Result};
use crate::platform::request::Header;
use crate::store::{self, accounts, api_keys, Db};
use crate::{bindings, platform};
use edgechat_core::accounts::User;
use edgechat_core::config::Config;
use edgechat_core::secret::{self, API_KEY_PREFIX};
use edgechat_core::token::{self, TokenSettings, DEFAULT_LEEWAY_SECONDS, MAX_TOKEN_LEN};
use edgechat_core::ApiError;

/// `last_used_at` of an API key is written at most this often.
const KEY_TOUCH_INTERVAL_MS: u64 = 60_000;

/// Who a request acts for.
pub struct Principal {
    pub user: User,
    /// The login session, when authenticated by access token.
    pub session_id: Option<String>,
    /// The API key, when authenticated by one.
    pub api_key_id: Option<String>,
}

/// The token settings from configuration (fails naming `JWT_SECRET` when it is unusable).
pub fn token_settings(config: &Config) -> Result<TokenSettings<'_>, AppError> {
    Ok(TokenSettings {
        secret: config.jwt_secret()?,
        issuer: &config.jwt_issuer,
        audience: &config.jwt_audience,
        access_ttl_seconds: config.access_token_ttl_seconds,
        leeway_seconds: DEFAULT_LEEWAY_SECONDS,
    })
}

fn invalid_token() -> AppError {
    ApiError::new(401, "invalid_token", "the access token or API key is invalid, expired or revoked")
        .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
        .into()
}

/// Statements built for the user a request acts for ([`authenticate_with`]).
pub type Reads<'a> = dyn Fn(&Db, &str) -> Result<Vec<D1PreparedStatement>, AppError> + 'a;

/// Authenticates the request, recording the user id for the log line.
pub async fn authenticate(cx: &mut Ctx<'_>) -> Result<Principal, AppError> {
    authenticate_with(cx, &|_, _| Ok(Vec::new())).await.map(|(principal, _)| principal)
}

/// Authenticates the request and runs `reads`, statements built for the user it acts for, in
/// the same D1 round trip when it can: an access token names its user before any lookup, so
/// its session check and the reads go in one batch (an API key is looked up first). The
/// reads' results come back in order, and are dropped when the request does not
/// authenticate. Reads only: nothing may be written before the session is known to be live.
/// (`reads` is a trait object so that this function is compiled once, not once per caller.)
pub async fn authenticate_with(cx: &mut Ctx<'_>, reads: &Reads<'_>) -> Result<(Principal, Vec<D1Result>), AppError> {
    let Some(raw) = cx.header(Header::Authorization).map(str::to_string) else {
        return Err(ApiError::unauthorized("authentication required: send Authorization: Bearer <token>")
            .with_header("www-authenticate", "Bearer")
            .into());
    };
    if raw.len() > MAX_TOKEN_LEN + 7 {
        return Err(invalid_token());
    }
    let (scheme, token) = raw.split_once(' ').ok_or_else(invalid_token)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid_token());
    }
    let token = token.trim();
    let db = cx.db()?;
    let now = platform::now_ms();
    let (principal, results) = if token.starts_with(API_KEY_PREFIX) {
        if !secret::has_shape(API_KEY_PREFIX, token) {
            return Err(invalid_token());
        }
        let found = api_keys::find_by_hash(&db, &secret::storage_hash(token)).await?.ok_or_else(invalid_token)?;
        if found.last_used_at.is_none_or(|t| now.saturating_sub(t) >= KEY_TOUCH_INTERVAL_MS) {
            let env = cx.env.clone();
            let key_id = found.api_key_id.clone();
            cx.worker_ctx.wait_until(async move {
                if let Ok(db) = bindings::d1(&env).map(crate::store::Db::new) {
                    let _ = api_keys::touch(&db, &key_id, now).await;
                }
            });
        }
        let statements = reads(&db, &found.user.user_id)?;
        let results = if statements.is_empty() { Vec::new() } else { db.batch("reads", statements).await? };
        (Principal { user: found.user, session_id: None, api_key_id: Some(found.api_key_id) }, results)
    } else {
        let settings = token_settings(&cx.config)?;
        let claims = token::verify_access_token(&settings, token, now).map_err(|_| invalid_token())?;
        let statements = reads(&db, &claims.user_id)?;
        let (user, results) = if statements.is_empty() {
            (accounts::live_session_user(&db, &claims.session_id, &claims.user_id).await?, Vec::new())
        } else {
            let mut batch = vec![accounts::live_session_user_statement(&db, &claims.session_id, &claims.user_id)?];
            batch.extend(statements);
            let mut results = db.batch("session and reads", batch).await?;
            let rest = results.split_off(1);
            let user: Option<User> = store::rows("session liveness", results.first())?.into_iter().next();
            (user, rest)
        };
        let user = user.ok_or_else(invalid_token)?;
        (Principal { user, session_id: Some(claims.session_id), api_key_id: None }, results)
    };
    cx.user_id = Some(principal.user.user_id.clone());
    Ok((principal, results))
}
