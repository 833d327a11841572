//! `GET/PATCH/DELETE /api/v1/users/me`: the signed-in user's own account.

use crate::app::Ctx;
use crate::auth::authenticate;
use crate::http::{json, read_body, read_json, AppError, HandlerResult, Reply};
use crate::runtime::request::Header;
use crate::store::accounts;
use crate::{crypto, runtime};
use edgechat_core::accounts::{normalize_display_name, DeleteMeRequest, UpdateMeRequest};
use edgechat_core::body::parse_json;
use edgechat_core::password::{self, PasswordHash};
use edgechat_core::ApiError;

/// 403 unless `current` is the user's password.
async fn check_current_password(cx: &mut Ctx<'_>, user_id: &str, current: &str) -> Result<(), AppError> {
    let db = cx.db()?;
    let stored = accounts::password_hash(&db, user_id)
        .await?
        .and_then(|h| PasswordHash::parse(&h))
        .ok_or_else(|| AppError::platform("check password", "unreadable password hash"))?;
    if !crypto::verify_password(current, &stored).await? {
        return Err(ApiError::forbidden("current_password is incorrect").into());
    }
    Ok(())
}

pub async fn get_me(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    json(200, &principal.user.view())
}

/// Changes the display name and/or the password. A password change needs the current
/// password and signs out every other session.
pub async fn update_me(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let req: UpdateMeRequest = read_json(cx).await?;
    if req.display_name.is_none() && req.password.is_none() {
        return Err(ApiError::validation("nothing to update: send display_name and/or password").into());
    }
    let display_name = match &req.display_name {
        Some(name) => Some(normalize_display_name(Some(name))?),
        None => None,
    };
    let new_hash = match &req.password {
        None => None,
        Some(new_password) => {
            password::validate(new_password)?;
            let current = req
                .current_password
                .as_deref()
                .ok_or_else(|| ApiError::validation("current_password is required to change the password"))?;
            check_current_password(cx, &principal.user.user_id, current).await?;
            Some(crypto::hash_password(new_password, cx.config.password_iterations).await?)
        }
    };
    let db = cx.db()?;
    let now = runtime::now_ms();
    let user_id = &principal.user.user_id;
    if let Some(name) = &display_name {
        accounts::update_display_name(&db, user_id, name.as_deref(), now).await?;
    }
    if let Some(hash) = new_hash {
        let keep = principal.session_id.as_deref().unwrap_or("");
        accounts::change_password(&db, user_id, &hash.encode(), keep, now).await?;
    }
    let user = accounts::find_user(&db, user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    json(200, &user.view())
}

/// Deletes the account and everything it owns, given the current password; its sessions and
/// keys stop working at once.
pub async fn delete_me(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    // No body at all reads as `{}`, so that it is answered like a missing password (422).
    let bytes = read_body(cx).await?;
    let req = if bytes.iter().all(u8::is_ascii_whitespace) {
        DeleteMeRequest::default()
    } else {
        parse_json::<DeleteMeRequest>(cx.header(Header::ContentType), &bytes)?
    };
    check_current_password(cx, &principal.user.user_id, req.current_password()?).await?;
    // The turn object first: its running turns stop, and nothing it kept (turn contexts and
    // events) outlives the account. If it cannot be reached, nothing is deleted.
    crate::objects::forget(cx.env, &principal.user.user_id).await?;
    let db = cx.db()?;
    accounts::delete_account(&db, &principal.user.user_id).await?;
    Ok(Reply::empty(204))
}
