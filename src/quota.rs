//! Plan limits at the edge: admits a model call (allowed model, requests per minute, daily
//! tokens, concurrent streams) before any upstream call, and settles it with the tokens
//! really used afterwards.

use crate::app::Ctx;
use crate::http::AppError;
use crate::platform::d1::D1PreparedStatement;
use crate::platform::env::Env;
use crate::store::{quotas, Db};
use crate::{bindings, platform};
use edgechat_core::accounts::User;
use edgechat_core::plans::{day_window, limit_headers, minute_window};
use edgechat_core::{ids, ApiError};

/// A stream slot whose release was lost frees itself after this long.
const STREAM_LEASE_MS: u64 = 10 * 60 * 1000;

/// An admitted call: what it reserved, to be settled when it ends.
pub struct Admission {
    user_id: String,
    day: String,
    reserved: u64,
    stream_id: Option<String>,
}

fn refused(code: &'static str, message: String, limit: u64, reset: u64) -> AppError {
    let mut err = ApiError::new(429, code, message);
    err.headers.extend(limit_headers(limit, 0, reset));
    err.into()
}

/// Checks and counts the user's plan limits for one call of `model` estimated at
/// `estimate` tokens; 403 for a model outside the plan, 429 with `Retry-After` and
/// `RateLimit-*` for any exhausted limit.
pub async fn admit(
    cx: &mut Ctx<'_>,
    user: &User,
    model: &str,
    estimate: u64,
    streaming: bool,
) -> Result<Admission, AppError> {
    let plan = cx.config.plans.get(&user.plan).clone();
    if !plan.allows_model(model) {
        return Err(ApiError::new(
            403,
            "model_not_in_plan",
            format!("the {} plan does not include model {model}", plan.name),
        )
        .into());
    }
    let db = cx.db()?;
    let now = platform::now_ms();
    let (window, reset) = minute_window(now);
    let rpm = u64::from(plan.requests_per_minute);
    let (day, day_reset) = day_window(now);
    let stream_id = if streaming { Some(ids::new_id("str", platform::random_bytes()?)) } else { None };
    let streams = u64::from(plan.concurrent_streams);
    let limits = quotas::Limits {
        window_start: window,
        requests_per_minute: rpm,
        day: &day,
        estimate,
        tokens_per_day: plan.tokens_per_day,
        stream: stream_id.as_deref().map(|id| quotas::StreamSlot {
            stream_id: id,
            now,
            expired_before: now.saturating_sub(STREAM_LEASE_MS),
            limit: streams,
        }),
    };
    match quotas::count_request(&db, &user.user_id, &limits).await? {
        quotas::Counted::Admitted => {}
        quotas::Counted::RateLimited => {
            let message = format!("at most {rpm} requests per minute on the {} plan", plan.name);
            return Err(refused("rate_limited", message, rpm, reset));
        }
        quotas::Counted::OverBudget => {
            let message =
                format!("the daily budget of {} tokens on the {} plan is used up", plan.tokens_per_day, plan.name);
            return Err(refused("token_budget_exceeded", message, plan.tokens_per_day, day_reset));
        }
        quotas::Counted::TooManyStreams => {
            let message = format!("at most {streams} streams at once on the {} plan", plan.name);
            return Err(refused("too_many_streams", message, streams, 1));
        }
    }
    Ok(Admission { user_id: user.user_id.clone(), day, reserved: estimate, stream_id })
}

impl Admission {
    /// The writes that replace the reservation by the tokens really used and free the stream
    /// slot, to batch with the call's other final writes.
    pub fn settle_statements(&self, db: &Db, used_tokens: u64) -> Result<Vec<D1PreparedStatement>, AppError> {
        let delta = used_tokens as i64 - self.reserved as i64;
        quotas::settle_statements(db, &self.user_id, &self.day, delta, self.stream_id.as_deref())
    }

    /// Settles in one D1 batch together with `also` (e.g. the call's usage record).
    pub async fn settle_with(self, env: &Env, used_tokens: u64, also: Option<D1PreparedStatement>) {
        let Ok(d1) = bindings::d1(env) else { return };
        let db = Db::new(d1);
        let Ok(mut statements) = self.settle_statements(&db, used_tokens) else { return };
        statements.extend(also);
        let _ = db.batch("settle", statements).await;
    }

    /// Settles on its own.
    pub async fn settle(self, env: &Env, used_tokens: u64) {
        self.settle_with(env, used_tokens, None).await;
    }
}
