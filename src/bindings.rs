//! Access to the Worker's bindings and variables by their configured names, and the parsed
//! configuration (read once per isolate).

use crate::http::AppError;
use edgechat_core::config::Config;
use std::cell::RefCell;
use std::rc::Rc;
use worker::kv::KvStore;
use worker::{Ai, D1Database, Env, Fetcher};

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The configuration, parsed from the environment on an isolate's first request. Vars and
/// secrets are fixed for the life of an isolate: a deployment or a changed secret starts new
/// isolates (and `wrangler dev` restarts the worker when they change).
pub fn config(env: &Env) -> Rc<Config> {
    CONFIG.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| Rc::new(Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))))
            .clone()
    })
}

pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
/// Workers AI, used by routes whose provider is `workers-ai`.
pub const AI: &str = "AI";
/// The chat page's static files.
pub const ASSETS: &str = "ASSETS";

/// A platform error naming a binding that is not configured.
fn unbound<E>(name: &'static str) -> impl FnOnce(E) -> AppError {
    move |_| AppError::platform("binding", format!("{name} is not bound"))
}

pub fn d1(env: &Env) -> Result<D1Database, AppError> {
    env.d1(DB).map_err(unbound(DB))
}

pub fn cache(env: &Env) -> Result<KvStore, AppError> {
    env.kv(CACHE).map_err(unbound(CACHE))
}

pub fn ai(env: &Env) -> Result<Ai, AppError> {
    env.ai(AI).map_err(unbound(AI))
}

pub fn assets(env: &Env) -> Result<Fetcher, AppError> {
    env.assets(ASSETS).map_err(unbound(ASSETS))
}
