//! Workers KV through its JavaScript binding: text values by key, written with a TTL.

use super::error_text;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    pub type KvNamespace;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_promise(this: &KvNamespace, key: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_promise(this: &KvNamespace, key: &str, value: &str, options: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

impl KvNamespace {
    /// The text under `key`, read into Rust; `None` when absent.
    pub async fn text(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.js_text(key).await?.map(String::from))
    }

    /// The value under `key` left as a JavaScript string, for a body sent as it is; `None` when absent.
    pub async fn js_text(&self, key: &str) -> Result<Option<js_sys::JsString>, String> {
        let promise = self.get_promise(key).map_err(|e| error_text(&e))?;
        Ok(JsFuture::from(promise).await.map_err(|e| error_text(&e))?.dyn_into().ok())
    }

    /// Stores `value` under `key` for `ttl_seconds`.
    pub async fn put(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), String> {
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"expirationTtl".into(), &JsValue::from_f64(ttl_seconds as f64));
        let promise = self.put_promise(key, value, &options).map_err(|e| error_text(&e))?;
        JsFuture::from(promise).await.map(drop).map_err(|e| error_text(&e))
    }
}
