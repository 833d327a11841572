//! `POST /api/v1/auth/{register,login,refresh,logout}`: accounts and login sessions.

use crate::app::Ctx;
use crate::auth::{authenticate, token_settings};
use crate::http::{json, read_json, AppError, HandlerResult, Reply};
use crate::runtime::request::Header;
use crate::store::{self, accounts, throttle as attempts};
use crate::{crypto, runtime};
use edgechat_core::accounts::{
    self as core_accounts, LoginRequest, RefreshRequest, RegisterRequest, Role, TokenResponse, User,
};
use edgechat_core::ids::{SessionId, UserId};
use edgechat_core::password::{self, PasswordHash};
use edgechat_core::secret::{self, REFRESH_TOKEN_PREFIX};
use edgechat_core::throttle::{self, Refusal};
use edgechat_core::{cookie, token, ApiError};

fn invalid_credentials() -> AppError {
    ApiError::new(401, "invalid_credentials", "email or password is incorrect").into()
}

fn invalid_refresh() -> AppError {
    ApiError::new(401, "invalid_refresh_token", "the refresh token is invalid, expired or revoked").into()
}

/// A fresh refresh token for a session: the token and its storage hash.
fn new_refresh_token() -> Result<(String, String), AppError> {
    let token = secret::refresh_token(runtime::random_bytes()?);
    let hash = secret::storage_hash(&token);
    Ok((token, hash))
}

/// The token response (body and refresh cookie) for `user` in `session_id`.
fn token_response(
    cx: &Ctx<'_>,
    status: u16,
    user: &User,
    session_id: &str,
    refresh_token: &str,
    now: u64,
) -> HandlerResult {
    let settings = token_settings(&cx.config)?;
    let access_token = token::issue_access_token(&settings, &user.user_id, session_id, now);
    let body = TokenResponse {
        user: user.view(),
        access_token: &access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: cx.config.access_token_ttl_seconds,
    };
    Ok(json(status, &body)?
        .with("set-cookie", cookie::set_refresh(refresh_token, cx.config.refresh_token_ttl_seconds))
        .with("cache-control", "no-store"))
}

/// The client's address, as the edge names it (`unknown` when it does not).
fn client_address<'c>(cx: &'c Ctx<'_>) -> &'c str {
    cx.header(Header::ConnectingIp).unwrap_or("unknown")
}

/// 429 with `Retry-After`.
fn too_many(code: &'static str, what: &str, refusal: Refusal) -> AppError {
    let retry = refusal.retry_after_seconds();
    ApiError::new(429, code, format!("{what}; retry in {retry} s")).with_header("retry-after", retry.to_string()).into()
}

pub async fn register(cx: &mut Ctx<'_>) -> HandlerResult {
    let req: RegisterRequest = read_json(cx).await?;
    let email = core_accounts::normalize_email(&req.email)?;
    password::validate(&req.password)?;
    let display_name = core_accounts::normalize_display_name(req.display_name.as_deref())?;
    token_settings(&cx.config)?;
    // Counted before the password is hashed: every well-formed attempt counts, taken or not.
    let limits = cx.config.register_limits;
    let now = runtime::now_ms();
    let db = cx.db()?;
    let key = throttle::register_key(client_address(cx));
    let counter =
        attempts::count_registration(&db, &key, now, throttle::window_cutoff(now, limits.window_seconds)).await?;
    throttle::judge_registration(&counter, now, &limits)
        .map_err(|refusal| too_many("too_many_registrations", "too many registrations from this address", refusal))?;
    let hash = crypto::hash_password(&req.password, cx.config.password_iterations).await?;
    // Every account starts as a user, whatever its address (anyone may register an address
    // first): admins are made by the operator's `npm run admin` or by another admin.
    let role = Role::User;
    let user = User {
        user_id: UserId::new(runtime::random_bytes()?).into(),
        email,
        display_name,
        role,
        plan: "free".into(),
        is_disabled: 0,
        created_at: now,
        updated_at: now,
        cache_version: 0,
    };
    let session_id = SessionId::new(runtime::random_bytes()?);
    let (refresh_token, refresh_hash) = new_refresh_token()?;
    let account = accounts::NewAccount {
        user_id: &user.user_id,
        email: &user.email,
        display_name: user.display_name.as_deref(),
        password_hash: &hash.encode(),
        role,
        now,
    };
    let ttl = cx.config.refresh_token_ttl_seconds;
    let session = accounts::NewSession::new(&session_id, &user.user_id, &refresh_hash, now, ttl);
    match accounts::create_account(&db, &account, &session).await {
        Err(e) if store::is_unique_violation(&e, "users.email") => {
            return Err(ApiError::conflict("email_taken", "an account with this email already exists").into())
        }
        other => other?,
    }
    cx.user_id = Some(user.user_id.clone());
    token_response(cx, 201, &user, &session_id, &refresh_token, now)
}

pub async fn login(cx: &mut Ctx<'_>) -> HandlerResult {
    let req: LoginRequest = read_json(cx).await?;
    let email = core_accounts::normalize_email(&req.email)?;
    token_settings(&cx.config)?;
    let db = cx.db()?;
    let now = runtime::now_ms();
    let limits = cx.config.login_limits;
    let cutoff = throttle::window_cutoff(now, limits.window_seconds);
    let ip = client_address(cx);
    let (email_key, email_ip_key, ip_key) =
        (throttle::email_key(&email), throttle::email_ip_key(&email, ip), throttle::ip_key(ip));
    let keys = attempts::LoginKeys { ip: &ip_key, email_ip: &email_ip_key, email: &email_key };
    let counts = attempts::count_login(&db, &keys, now, cutoff).await?;
    if let Err(refusal) = throttle::judge_login(&counts, now, &limits) {
        if matches!(refusal, Refusal::Wait { .. }) {
            attempts::forgive_waiting(&db, &email_ip_key).await?;
        }
        return Err(too_many("too_many_login_attempts", "too many failed logins", refusal));
    }

    let row = accounts::find_login(&db, &email).await?;
    let stored = row.as_ref().and_then(|r| PasswordHash::parse(&r.password_hash));
    // Unknown emails hash against a decoy so both failures take the same time.
    let verified = match &stored {
        Some(hash) => crypto::verify_password(&req.password, hash).await?,
        None => {
            crypto::verify_password(&req.password, &password::decoy(cx.config.password_iterations)).await?;
            false
        }
    };
    let (Some(row), Some(stored), true) = (row, stored, verified) else {
        attempts::count_email_failure(&db, &email_key, now, cutoff).await?;
        return Err(invalid_credentials());
    };
    if row.is_disabled != 0 {
        return Err(ApiError::forbidden("this account is disabled").into());
    }
    attempts::forgive(&db, &email_ip_key, &ip_key).await?;
    if stored.needs_rehash(cx.config.password_iterations) {
        let fresh = crypto::hash_password(&req.password, cx.config.password_iterations).await?;
        accounts::set_password_hash(&db, &row.user_id, &fresh.encode()).await?;
    }
    let user = accounts::find_user(&db, &row.user_id).await?.ok_or_else(invalid_credentials)?;
    let session_id = SessionId::new(runtime::random_bytes()?);
    let (refresh_token, refresh_hash) = new_refresh_token()?;
    let ttl = cx.config.refresh_token_ttl_seconds;
    let session = accounts::NewSession::new(&session_id, &user.user_id, &refresh_hash, now, ttl);
    accounts::open_session(&db, &session).await?;
    cx.user_id = Some(user.user_id.clone());
    token_response(cx, 200, &user, &session_id, &refresh_token, now)
}

/// True when a cookie-carried request comes from this origin or an allowed CORS origin.
fn same_site_origin(cx: &Ctx<'_>) -> bool {
    let Some(origin) = cx.header(Header::Origin) else {
        return true;
    };
    let own = cx.own_origin();
    origin == own || cx.config.cors.grants(origin)
}

pub async fn refresh(cx: &mut Ctx<'_>) -> HandlerResult {
    let req: RefreshRequest = read_json(cx).await?;
    let presented = match req.refresh_token {
        Some(t) => t,
        None => {
            let cookies = cx.header(Header::Cookie).unwrap_or_default();
            let t = cookie::get(cookies, cookie::REFRESH_COOKIE).map(str::to_string).ok_or_else(invalid_refresh)?;
            if !same_site_origin(cx) {
                return Err(ApiError::forbidden("cross-site refresh is not allowed").into());
            }
            t
        }
    };
    if !secret::has_shape(REFRESH_TOKEN_PREFIX, &presented) {
        return Err(invalid_refresh());
    }
    let db = cx.db()?;
    let now = runtime::now_ms();
    let old_hash = secret::storage_hash(&presented);
    let row = accounts::find_refresh(&db, &old_hash).await?.ok_or_else(invalid_refresh)?;
    if row.used_at.is_some() {
        // A rotated token came back: it was stolen or replayed, so the whole family dies.
        accounts::revoke_session(&db, &row.session_id, now).await?;
        return Err(invalid_refresh());
    }
    if row.revoked_at.is_some() || row.is_disabled != 0 || row.expires_at <= now {
        return Err(invalid_refresh());
    }
    let (refresh_token, new_hash) = new_refresh_token()?;
    let expires_at = now + cx.config.refresh_token_ttl_seconds * 1000;
    if !accounts::rotate_refresh(&db, &old_hash, &new_hash, &row.session_id, now, expires_at).await? {
        accounts::revoke_session(&db, &row.session_id, now).await?;
        return Err(invalid_refresh());
    }
    let user = accounts::find_user(&db, &row.user_id).await?.ok_or_else(invalid_refresh)?;
    cx.user_id = Some(user.user_id.clone());
    token_response(cx, 200, &user, &row.session_id, &refresh_token, now)
}

pub async fn logout(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let Some(session_id) = principal.session_id else {
        return Err(ApiError::bad_request("not_a_session", "API keys have no session: revoke the key instead").into());
    };
    let db = cx.db()?;
    accounts::revoke_session(&db, &session_id, runtime::now_ms()).await?;
    Ok(Reply::empty(204).with("set-cookie", cookie::clear_refresh()))
}
