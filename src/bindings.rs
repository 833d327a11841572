//! Access to the Worker's bindings and variables by their configured names.

use crate::http::AppError;
use worker::{D1Database, Env, KvStore};

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
