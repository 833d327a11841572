//! Authentication at the edge: a bearer access token (JWT plus a live-session lookup) or an
//! API key, resolved to the user it acts for.

use crate::app::Ctx;
use crate::http::AppError;
use crate::runtime::request::Header;
use crate::store::api_keys::KeyUser;
use crate::store::reads::{self, Read};
use crate::store::{self, accounts, api_keys, D1Result};
use crate::{bindings, runtime};
use edgechat_core::accounts::User;
use edgechat_core::body;
use edgechat_core::config::Config;
use edgechat_core::scopes::{self, Caller};
use edgechat_core::secret::{self, API_KEY_PREFIX};
use edgechat_core::token::{self, TokenSettings, DEFAULT_LEEWAY_SECONDS, MAX_TOKEN_LEN};
use edgechat_core::ApiError;

/// `last_used_at` of an API key is written at most this often.
const KEY_TOUCH_INTERVAL_MS: u64 = 60_000;

/// Who a request acts for (boxed: it passes through most handlers' futures).
pub type Principal = Box<Acting>;

/// Who a request acts for.
pub struct Acting {
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

/// Authenticates the request, recording the user id for the log line.
pub async fn authenticate(cx: &mut Ctx<'_>) -> Result<Principal, AppError> {
    authenticate_reading(cx, &[]).await.map(|(principal, _)| principal)
}

/// Authenticates the request and makes `reads` for the user it acts for: in the same D1 round
/// trip as the session check for an access token (it names its user before any lookup),
/// after the check for an API key. The reads' results come back in order, and are dropped
/// when the request does not authenticate.
pub async fn authenticate_reading(
    cx: &mut Ctx<'_>,
    reads: &[Read<'_>],
) -> Result<(Principal, Vec<D1Result>), AppError> {
    let checked = check_credential(cx).await?;
    authenticate_checked(cx, checked, reads).await
}

/// A credential checked before the request's body is read: an API key looked up, live and
/// authorized for the route; an access token's signature and claims verified (its session is
/// checked by [`authenticate_checked`], in the round trip of the request's reads).
pub struct Checked(Verified);

enum Verified {
    Token(token::AccessClaims),
    /// The key's row: live, and authorized for the route.
    Key(Box<KeyUser>),
}

/// Checks the credential in the header, then the body's declared length: a caller without a
/// valid credential gets its 401 (or 403) before anything of the body is read, whatever its size.
pub async fn check_credential(cx: &mut Ctx<'_>) -> Result<Checked, AppError> {
    let now = runtime::now_ms();
    let credential = match credential(cx, now)? {
        Credential::Key(hash) => {
            let db = cx.db()?;
            let found = db.query("authentication", api_keys::find_by_hash_statement(&db, &hash, now)?).await?;
            let found: KeyUser = store::rows("api key", Some(&found))?.into_iter().next().ok_or_else(invalid_token)?;
            // The one scope check: every authenticated route passes here with its route set
            // by dispatch; without one (never expected) a key is granted nothing.
            match cx.route {
                Some(route) => scopes::authorize(route, Caller::Key(found.scopes))?,
                None => return Err(ApiError::forbidden("no route to authorize this API key for").into()),
            }
            touch_later(cx, &found, now);
            Verified::Key(Box::new(found))
        }
        Credential::Token(claims) => Verified::Token(claims),
    };
    body::check_declared_length(cx.header(Header::ContentLength), cx.config.max_body_bytes)?;
    Ok(Checked(credential))
}

/// Finishes authentication from a checked credential: see [`authenticate_reading`].
pub async fn authenticate_checked(
    cx: &mut Ctx<'_>,
    checked: Checked,
    reads: &[Read<'_>],
) -> Result<(Principal, Vec<D1Result>), AppError> {
    let db = cx.db()?;
    let (principal, results) = match checked.0 {
        Verified::Key(found) => {
            let found = *found;
            let principal = Box::new(Acting { user: found.user, session_id: None, api_key_id: Some(found.api_key_id) });
            let statements = reads::statements(&db, &principal.user.user_id, reads)?;
            let results = if statements.is_empty() { Vec::new() } else { db.batch("reads", statements).await? };
            (principal, results)
        }
        Verified::Token(claims) => {
            let check = accounts::live_session_user_statement(&db, &claims.session_id, &claims.user_id)?;
            let statements = reads::statements(&db, &claims.user_id, reads)?;
            let (found, results) = if statements.is_empty() {
                (Some(db.query("authentication", check).await?), Vec::new())
            } else {
                let mut batch = Vec::with_capacity(statements.len() + 1);
                batch.push(check);
                batch.extend(statements);
                let mut results = db.batch("authentication and reads", batch).await?;
                let rest = results.split_off(1.min(results.len()));
                (results.pop(), rest)
            };
            let user: User =
                store::rows("session liveness", found.as_ref())?.into_iter().next().ok_or_else(invalid_token)?;
            (Box::new(Acting { user, session_id: Some(claims.session_id), api_key_id: None }), results)
        }
    };
    cx.user_id = Some(principal.user.user_id.clone());
    Ok((principal, results))
}

/// The credential a request presents, checked as far as it can be without D1.
enum Credential {
    Token(token::AccessClaims),
    /// An API key's storage hash.
    Key(String),
}

fn credential(cx: &Ctx<'_>, now: u64) -> Result<Credential, AppError> {
    // The API surface (`/v1/*`) also takes an API key as Anthropic's SDKs send one.
    let on_api = edgechat_core::url::path(&cx.head.url).starts_with("/v1/");
    let api_key = cx.header(Header::ApiKey).filter(|_| on_api);
    let Some(raw) = cx.header(Header::Authorization) else {
        return match api_key {
            Some(key) if secret::has_shape(API_KEY_PREFIX, key.trim()) => {
                Ok(Credential::Key(secret::storage_hash(key.trim())))
            }
            Some(_) => Err(invalid_token()),
            None => Err(ApiError::unauthorized(
                "authentication required: send Authorization: Bearer <token> (or, on /v1, x-api-key: <API key>)",
            )
            .with_header("www-authenticate", "Bearer")
            .into()),
        };
    };
    if raw.len() > MAX_TOKEN_LEN + 7 {
        return Err(invalid_token());
    }
    let (scheme, token) = raw.split_once(' ').ok_or_else(invalid_token)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid_token());
    }
    let token = token.trim();
    if token.starts_with(API_KEY_PREFIX) {
        if !secret::has_shape(API_KEY_PREFIX, token) {
            return Err(invalid_token());
        }
        return Ok(Credential::Key(secret::storage_hash(token)));
    }
    let settings = token_settings(&cx.config)?;
    token::verify_access_token(&settings, token, now).map(Credential::Token).map_err(|_| invalid_token())
}

/// Records an API key's use, at most once a minute, after the response.
fn touch_later(cx: &Ctx<'_>, found: &KeyUser, now: u64) {
    if found.last_used_at.is_some_and(|t| now.saturating_sub(t) < KEY_TOUCH_INTERVAL_MS) {
        return;
    }
    let env = cx.env.clone();
    let key_id = found.api_key_id.clone();
    cx.worker_ctx.wait_until(async move {
        if let Ok(db) = bindings::d1(&env).map(crate::store::Db::new) {
            let _ = api_keys::touch(&db, &key_id, now).await;
        }
    });
}
