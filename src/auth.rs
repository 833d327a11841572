//! Authentication at the edge: a bearer access token (JWT plus a live-session lookup) or an
//! API key, resolved to the user it acts for.

use crate::app::Ctx;
use crate::http::AppError;
use crate::runtime::request::Header;
use crate::store::api_keys::KeyUser;
use crate::store::quotas::Gate;
use crate::store::{self, accounts, api_keys, Db};
use crate::store::{D1PreparedStatement, D1Result};
use crate::{bindings, runtime};
use edgechat_core::accounts::User;
use edgechat_core::config::Config;
use edgechat_core::secret::{self, API_KEY_PREFIX};
use edgechat_core::token::{self, TokenSettings, DEFAULT_LEEWAY_SECONDS, MAX_TOKEN_LEN};
use edgechat_core::ApiError;
use std::cell::RefCell;

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

/// Statements built for the user a request acts for ([`authenticate_with`]).
pub type Reads<'a> = dyn Fn(&Db, &str) -> Result<Vec<D1PreparedStatement>, AppError> + 'a;

/// Writes built for the user a request acts for, each gated on `Gate` ([`authenticate_and_write`]).
pub type GatedWrites<'a> = dyn Fn(&Db, &str, Gate<'_>) -> Result<Vec<D1PreparedStatement>, AppError> + 'a;

/// Authenticates the request, recording the user id for the log line.
pub async fn authenticate(cx: &mut Ctx<'_>) -> Result<Principal, AppError> {
    authenticate_with(cx, &|_, _| Ok(Vec::new())).await.map(|(principal, _)| principal)
}

/// Authenticates the request and runs `reads`, statements built for the user it acts for, in
/// the same D1 round trip when it can: an access token names its user before any lookup, and
/// an API key this isolate has seen names the user it had. Otherwise the key is looked up
/// first. The reads' results come back in order, and are dropped when the request does not
/// authenticate. Reads only: nothing may be written before the credential is known to be live.
/// (`reads` is a trait object so that this function is compiled once, not once per caller.)
pub async fn authenticate_with(cx: &mut Ctx<'_>, reads: &Reads<'_>) -> Result<(Principal, Vec<D1Result>), AppError> {
    let (principal, results) = authenticate_batched(cx, None, &|db, user_id, _| reads(db, user_id)).await?;
    let results = match results {
        Some(results) => results,
        None => {
            let db = cx.db()?;
            let statements = reads(&db, &principal.user.user_id)?;
            if statements.is_empty() {
                Vec::new()
            } else {
                db.batch("reads", statements).await?
            }
        }
    };
    Ok((principal, results))
}

/// Authenticates the request and, in the same D1 round trip when it can, runs `writes` built
/// for the user it acts for. Each write must be gated on its `Gate`: the credential still
/// live and its user on the plan this isolate last saw for it (`default_plan` for an access
/// token not seen yet), so that nothing is written for a dead credential or a wrong guess.
/// The writes' results come back when they ran for the user as it is; `None` when they did
/// not run (a key not seen yet, a guess that missed, or no writes for the guessed plan): the
/// caller then makes its writes itself, knowing the user.
pub async fn authenticate_and_write(
    cx: &mut Ctx<'_>,
    default_plan: &str,
    writes: &GatedWrites<'_>,
) -> Result<(Principal, Option<Vec<D1Result>>), AppError> {
    authenticate_batched(cx, Some(default_plan), writes).await
}

/// How many credentials this isolate remembers the user and plan of.
const LAST_SEEN_MAX: usize = 256;

thread_local! {
    /// The user and plan this isolate last saw for a credential (a session id or an API key
    /// hash), first seen first: the guess that lets a request's statements ride with its
    /// authentication. Never trusted: the batch's own liveness check says whether it held.
    static LAST_SEEN: RefCell<Vec<[String; 3]>> = const { RefCell::new(Vec::new()) };
}

fn last_seen(credential: &str) -> Option<(String, String)> {
    LAST_SEEN.with(|seen| {
        seen.borrow().iter().find(|[c, ..]| c == credential).map(|[_, user_id, plan]| (user_id.clone(), plan.clone()))
    })
}

/// Called on every authenticated request: allocates only when the credential is new or its
/// user's plan changed.
fn remember(credential: &str, user: &User) {
    LAST_SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some([_, user_id, plan]) = seen.iter_mut().find(|[c, ..]| c == credential) {
            if *user_id != user.user_id || *plan != user.plan {
                (*user_id, *plan) = (user.user_id.clone(), user.plan.clone());
            }
            return;
        }
        if seen.len() >= LAST_SEEN_MAX {
            seen.remove(0);
        }
        seen.push([credential.to_owned(), user.user_id.clone(), user.plan.clone()]);
    });
}

/// The credential a request presents, checked as far as it can be without D1.
enum Credential {
    Token(token::AccessClaims),
    /// An API key's storage hash.
    Key(String),
}

fn credential(cx: &Ctx<'_>, now: u64) -> Result<Credential, AppError> {
    let Some(raw) = cx.header(Header::Authorization) else {
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
    if token.starts_with(API_KEY_PREFIX) {
        if !secret::has_shape(API_KEY_PREFIX, token) {
            return Err(invalid_token());
        }
        return Ok(Credential::Key(secret::storage_hash(token)));
    }
    let settings = token_settings(&cx.config)?;
    token::verify_access_token(&settings, token, now).map(Credential::Token).map_err(|_| invalid_token())
}

/// [`authenticate_with`] and [`authenticate_and_write`]: `plan` is `None` for reads (valid for
/// any plan), or the plan to guess for writes when the credential has not been seen.
async fn authenticate_batched(
    cx: &mut Ctx<'_>,
    plan: Option<&str>,
    build: &GatedWrites<'_>,
) -> Result<(Principal, Option<Vec<D1Result>>), AppError> {
    let now = runtime::now_ms();
    let credential = credential(cx, now)?;
    let db = cx.db()?;
    // The guess: the user the statements are built for and, for writes, the plan they assume.
    let (kind, key, guess) = match &credential {
        Credential::Key(hash) => ("key", hash.as_str(), last_seen(hash)),
        Credential::Token(claims) => {
            let seen = last_seen(&claims.session_id).filter(|(user_id, _)| *user_id == claims.user_id);
            let plan = seen.map_or_else(|| plan.unwrap_or_default().to_owned(), |(_, plan)| plan);
            ("session", claims.session_id.as_str(), Some((claims.user_id.clone(), plan)))
        }
    };
    let statements = match &guess {
        Some((user_id, guessed_plan)) => {
            let gate = match plan {
                Some(_) => Gate { kind: Some(kind), credential: key, plan: guessed_plan },
                None => Gate::NONE,
            };
            build(&db, user_id, gate)?
        }
        None => Vec::new(),
    };
    let check = match &credential {
        Credential::Key(hash) => api_keys::find_by_hash_statement(&db, hash)?,
        Credential::Token(claims) => accounts::live_session_user_statement(&db, &claims.session_id, &claims.user_id)?,
    };
    let ran = !statements.is_empty();
    let (found, rest) = if ran {
        let mut batch = vec![check];
        batch.extend(statements);
        let mut results = db.batch("authentication and statements", batch).await?;
        let rest = results.split_off(1);
        (results.pop(), rest)
    } else {
        (Some(db.query("authentication", check).await?), Vec::new())
    };
    let principal = match credential {
        Credential::Key(hash) => {
            let found: KeyUser =
                store::rows("api key", found.as_ref())?.into_iter().next().ok_or_else(invalid_token)?;
            touch_later(cx, &found, now);
            remember(&hash, &found.user);
            Box::new(Acting { user: found.user, session_id: None, api_key_id: Some(found.api_key_id) })
        }
        Credential::Token(claims) => {
            let user: User =
                store::rows("session liveness", found.as_ref())?.into_iter().next().ok_or_else(invalid_token)?;
            remember(&claims.session_id, &user);
            Box::new(Acting { user, session_id: Some(claims.session_id), api_key_id: None })
        }
    };
    cx.user_id = Some(principal.user.user_id.clone());
    // The statements held when they were built for this user (and, for writes, this plan).
    let held = guess.is_some_and(|(user_id, guessed_plan)| {
        user_id == principal.user.user_id && (plan.is_none() || guessed_plan == principal.user.plan)
    });
    Ok((principal, (ran && held).then_some(rest)))
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
