//! `POST/GET /api/v1/keys`, `DELETE /api/v1/keys/{api_key_id}`: API keys for programmatic
//! access, shown once at creation and stored only as hashes.

use crate::app::Ctx;
use crate::auth::{authenticate, authenticate_reading};
use crate::http::{json, list_page, read_json, HandlerResult, Reply};
use crate::runtime;
use crate::store::api_keys;
use crate::store::reads::Read;
use edgechat_core::accounts::{normalize_key_name, ApiKey, ApiKeyView, CreateKeyRequest};
use edgechat_core::ids::ApiKeyId;
use edgechat_core::scopes::{self, Scopes};
use edgechat_core::{secret, ApiError};

pub async fn create_key(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let req: CreateKeyRequest = read_json(cx).await?;
    let name = normalize_key_name(&req.name)?;
    let scopes = Scopes::from_request(req.scopes.as_deref())?;
    let now = runtime::now_ms();
    let expires_at = scopes::expiry(req.expires_at.as_deref(), now)?;
    let key = secret::api_key(runtime::random_bytes()?);
    let stored = ApiKey {
        api_key_id: ApiKeyId::new(runtime::random_bytes()?),
        name,
        key_prefix: secret::display_prefix(&key),
        scopes,
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    let db = cx.db()?;
    let created = api_keys::create(
        &db,
        &api_keys::NewKey {
            api_key_id: &stored.api_key_id,
            user_id: &principal.user.user_id,
            name: &stored.name,
            key_prefix: &stored.key_prefix,
            key_hash: &secret::storage_hash(&key),
            scopes: &stored.scopes.to_column(),
            expires_at,
            now,
        },
    )
    .await?;
    if !created {
        return Err(ApiError::conflict(
            "key_limit_reached",
            format!("at most {} API keys per user: revoke one first", api_keys::MAX_KEYS_PER_USER),
        )
        .into());
    }
    Ok(json(201, &stored.view(Some(&key)))?.with("cache-control", "no-store"))
}

pub async fn list_keys(cx: &mut Ctx<'_>) -> HandlerResult {
    let (_, results) = authenticate_reading(cx, &[Read::ApiKeys]).await?;
    let keys = api_keys::keys(results.first())?;
    let data: Vec<ApiKeyView<'_>> = keys.iter().map(|k| k.view(None)).collect();
    list_page(200, &data, None)
}

pub async fn delete_key(cx: &mut Ctx<'_>) -> HandlerResult {
    let principal = authenticate(cx).await?;
    let api_key_id = ApiKeyId::parse(cx.param("api_key_id"));
    let db = cx.db()?;
    let revoked = match &api_key_id {
        Some(id) => api_keys::revoke(&db, id, &principal.user.user_id, runtime::now_ms()).await?,
        None => false,
    };
    if !revoked {
        return Err(ApiError::not_found("API key").into());
    }
    Ok(Reply::empty(204))
}
