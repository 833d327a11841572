//! Plan limits at the edge: admits a model call (allowed model, requests per minute, daily
//! tokens, concurrent streams) before any upstream call, and settles it with the tokens
//! really used afterwards.

use crate::app::Ctx;
use crate::http::AppError;
use crate::store::quotas::Reservation;
use crate::store::{quotas, D1PreparedStatement, D1Result, Db};
use crate::{bindings, runtime};
use edgechat_core::accounts::User;
use edgechat_core::ids::StreamId;
use edgechat_core::plans::{self, day_window, minute_window, Counts, Decision, Plan};
use edgechat_core::ApiError;
use worker::Env;

/// A stream slot whose release was lost frees itself after this long.
const STREAM_LEASE_MS: u64 = 10 * 60 * 1000;

/// An admitted call: what it reserved, to be settled when it ends.
pub struct Admission {
    user_id: String,
    day: String,
    reserved: u64,
    stream_id: Option<String>,
}

/// One call to admit: its model, its estimated tokens, and whether it streams. The minute,
/// the day and the stream slot's id are fixed when it is made, so that the writes made only
/// if it is admitted ([`Call::reservation`]) name what its counting takes.
pub struct Call<'a> {
    model: &'a str,
    estimate: u64,
    now: u64,
    day: String,
    stream_id: Option<String>,
}

impl<'a> Call<'a> {
    pub fn new(model: &'a str, estimate: u64, streaming: bool) -> Result<Self, AppError> {
        let now = runtime::now_ms();
        let stream_id = if streaming { Some(StreamId::new(runtime::random_bytes()?).into()) } else { None };
        Ok(Call { model, estimate, now, day: day_window(now).0, stream_id })
    }

    /// The call's marks in D1, for writes that must happen only if it is admitted
    /// ([`admit_with`]); `marker` is a unique id of the call.
    pub fn reservation<'r>(&'r self, marker: &'r str) -> Reservation<'r> {
        Reservation { marker, day: &self.day, stream_id: self.stream_id.as_deref() }
    }

    fn limits(&self, plan: &Plan) -> quotas::Limits<'_> {
        quotas::Limits {
            window_start: minute_window(self.now).0,
            requests_per_minute: u64::from(plan.requests_per_minute),
            day: &self.day,
            estimate: self.estimate,
            tokens_per_day: plan.tokens_per_day,
            marker: None,
            stream: self.stream_id.as_deref().map(|id| quotas::StreamSlot {
                stream_id: id,
                now: self.now,
                expired_before: self.now.saturating_sub(STREAM_LEASE_MS),
                limit: u64::from(plan.concurrent_streams),
            }),
        }
    }

    /// 403 when the plan does not include the model.
    fn check_model(&self, plan: &Plan) -> Result<(), AppError> {
        if plan.allows_model(self.model) {
            return Ok(());
        }
        let message = format!("the {} plan does not include model {}", plan.name, self.model);
        Err(ApiError::new(403, "model_not_in_plan", message).into())
    }

    /// The admission, or the 429 for the limit the counts say is exhausted. A refused call
    /// gives back what the counting took for it (a second round trip, on refusal only).
    async fn verdict(self, db: &Db, counts: Counts, plan: &Plan, user_id: &str) -> Result<Admission, AppError> {
        let (limit, release_stream, return_tokens) = match plans::decide(counts, plan) {
            Decision::Admitted => {
                return Ok(Admission {
                    user_id: user_id.to_owned(),
                    day: self.day,
                    reserved: self.estimate,
                    stream_id: self.stream_id,
                })
            }
            Decision::Refused { limit, release_stream, return_tokens } => (limit, release_stream, return_tokens),
        };
        if let Some(id) = self.stream_id.as_deref().filter(|_| release_stream) {
            quotas::release_stream(db, id).await?;
        }
        if return_tokens {
            quotas::settle_tokens(db, user_id, &self.day, -(self.estimate as i64)).await?;
        }
        Err(limit.refusal(plan, self.now).into())
    }
}

/// Checks and counts the user's plan limits for `call`: 403 for a model outside the plan,
/// 429 with `Retry-After` and `RateLimit-*` for any exhausted limit.
pub async fn admit(cx: &mut Ctx<'_>, user: &User, call: Call<'_>) -> Result<Admission, AppError> {
    admit_with(cx, user, call, "", Vec::new()).await.map(|(admission, _)| admission)
}

/// [`admit`], with `writes` in the same D1 batch after the counts (one round trip). Each write
/// must require the call's [`Call::reservation`] for `marker`: then a refused call writes
/// nothing. The writes' results come back in order.
pub async fn admit_with(
    cx: &mut Ctx<'_>,
    user: &User,
    call: Call<'_>,
    marker: &str,
    writes: Vec<D1PreparedStatement>,
) -> Result<(Admission, Vec<D1Result>), AppError> {
    let config = cx.config.clone();
    let plan = config.plans.get(&user.plan);
    call.check_model(plan)?;
    let db = cx.db()?;
    let mut limits = call.limits(plan);
    if !writes.is_empty() {
        limits.marker = Some(marker);
    }
    let mut statements = quotas::count_statements(&db, &user.user_id, &limits)?;
    let counts = statements.len();
    statements.extend(writes);
    let mut results = db.batch("count request", statements).await?;
    let written = results.split_off(counts.min(results.len()));
    let counts = quotas::counts(&limits, &results)?;
    let admission = call.verdict(&db, counts, plan, &user.user_id).await?;
    Ok((admission, written))
}

impl Admission {
    /// The tokens reserved at admission.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

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
