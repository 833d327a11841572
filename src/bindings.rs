//! Access to the Worker's bindings and variables by their configured names, and the parsed
//! configuration (read once per isolate).

use crate::http::AppError;
use edgechat_core::config::Config;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{D1Database, Env, KvStore};

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The configuration, parsed from the environment on an isolate's first request. Vars and
/// secrets are fixed for the life of an isolate: a deployment or a changed secret starts new
/// isolates (and `wrangler dev` restarts the worker when they change).
pub fn config(env: &Env) -> Rc<Config> {
    CONFIG.with(|slot| slot.borrow_mut().get_or_insert_with(|| Rc::new(Config::from_lookup(|n| var(env, n)))).clone())
}

pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
/// Workers AI, used by routes whose provider is `workers-ai`.
pub const AI: &str = "AI";

/// A var or secret as a string, or `None` when unset.
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).or_else(|| env.secret(name).ok().map(|v| v.to_string()))
}

pub fn d1(env: &Env) -> Result<D1Database, AppError> {
    env.d1(DB).map_err(|e| AppError::platform("binding DB", e))
}

pub fn cache(env: &Env) -> Result<KvStore, AppError> {
    env.kv(CACHE).map_err(|e| AppError::platform("binding CACHE", e))
}
