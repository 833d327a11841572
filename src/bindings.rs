//! Access to the Worker's bindings and variables by their configured names, and the parsed
//! configuration (read once per isolate).

use crate::http::AppError;
use crate::platform::d1::D1Database;
use crate::platform::env::Env;
use crate::platform::fetch::{Ai, Fetcher};
use crate::platform::kv::KvNamespace;
use edgechat_core::config::Config;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The configuration, parsed from the environment on an isolate's first request. Vars and
/// secrets are fixed for the life of an isolate: a deployment or a changed secret starts new
/// isolates (and `wrangler dev` restarts the worker when they change).
pub fn config(env: &Env) -> Rc<Config> {
    CONFIG.with(|slot| slot.borrow_mut().get_or_insert_with(|| Rc::new(Config::from_lookup(|n| env.string(n)))).clone())
}

pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
/// Workers AI, used by routes whose provider is `workers-ai`.
pub const AI: &str = "AI";
/// The chat page's static files.
pub const ASSETS: &str = "ASSETS";

/// The binding `name`, or a platform error naming it when it is not configured.
fn binding<T: JsCast>(env: &Env, name: &'static str) -> Result<T, AppError> {
    let value = env.get(name);
    if value.is_undefined() || value.is_null() {
        return Err(AppError::platform("binding", format!("{name} is not bound")));
    }
    Ok(value.unchecked_into())
}

pub fn d1(env: &Env) -> Result<D1Database, AppError> {
    binding(env, DB)
}

pub fn cache(env: &Env) -> Result<KvNamespace, AppError> {
    binding(env, CACHE)
}

pub fn ai(env: &Env) -> Result<Ai, AppError> {
    binding(env, AI)
}

pub fn assets(env: &Env) -> Result<Fetcher, AppError> {
    binding(env, ASSETS)
}
