//! Password hashing through the runtime's WebCrypto: PBKDF2-HMAC-SHA256 runs as native code,
//! far cheaper than the same loop in wasm. Parameters and format live in the core. workers-rs
//! has no WebCrypto PBKDF2 (its `crypto` module is digests only): web_sys's SubtleCrypto is
//! called directly.

use crate::http::AppError;
use crate::runtime;
use edgechat_core::password::{PasswordHash, HASH_BYTES, SALT_BYTES};
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, Pbkdf2Params, SubtleCrypto};

fn subtle() -> Result<SubtleCrypto, AppError> {
    let crypto =
        Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| AppError::platform("webcrypto", "no crypto"))?;
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

/// PBKDF2-HMAC-SHA256 of `password` with `salt`, `iterations` rounds, 32 bytes out.
pub async fn pbkdf2(password: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>, AppError> {
    let fail = |e: wasm_bindgen::JsValue| AppError::platform("pbkdf2", crate::runtime::error_text(&e));
    let subtle = subtle()?;
    let usages = Array::of1(&"deriveBits".into());
    let key_data = Uint8Array::from(password.as_bytes());
    let key = subtle.import_key_with_str("raw", &key_data, "PBKDF2", false, &usages).map_err(fail)?;
    let key: CryptoKey = JsFuture::from(key).await.map_err(fail)?.unchecked_into();
    let params = Pbkdf2Params::new_with_str("PBKDF2", "SHA-256", iterations, &Uint8Array::from(salt));
    let bits = subtle.derive_bits_with_object(&params, &key, (HASH_BYTES * 8) as u32).map_err(fail)?;
    let bits = JsFuture::from(bits).await.map_err(fail)?;
    Ok(Uint8Array::new(&bits).to_vec())
}

/// A new salted hash of `password` with the configured iteration count.
pub async fn hash_password(password: &str, iterations: u32) -> Result<PasswordHash, AppError> {
    let salt = runtime::random_bytes::<SALT_BYTES>()?.to_vec();
    let hash = pbkdf2(password, &salt, iterations).await?;
    Ok(PasswordHash { iterations, salt, hash })
}

/// Checks `password` against a stored hash (constant-time comparison).
pub async fn verify_password(password: &str, stored: &PasswordHash) -> Result<bool, AppError> {
    let derived = pbkdf2(password, &stored.salt, stored.iterations).await?;
    Ok(stored.matches(&derived))
}
