//! Plan limits at the edge: admits a model call (allowed model, requests per minute, daily
//! tokens reserved for its worst case, concurrent streams) before any upstream call, keeps its
//! leases while it runs, and settles it with the tokens really used afterwards.

use crate::app::Ctx;
use crate::http::AppError;
use crate::store::quotas::Reservation;
use crate::store::{quotas, D1PreparedStatement, D1Result, Db};
use crate::{bindings, runtime};
use edgechat_core::accounts::User;
use edgechat_core::admission::Reserve;
use edgechat_core::config::Config;
use edgechat_core::ids::{self, StreamId};
use edgechat_core::plans::{self, day_window, minute_window, Counts, Decision, Plan};
use edgechat_core::ApiError;
use futures_util::future::{select, Either};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use worker::Env;

/// A stream slot whose lease was not renewed for this long is free again (its call's
/// instance died).
const STREAM_LEASE_MS: u64 = 60 * 1000;
/// A reservation not renewed for this long is settled by the user's next admission.
const RESERVATION_LEASE_MS: u64 = 2 * 60 * 1000;
/// How often a running call renews both: a few times within the shorter lease.
const RENEW_EVERY_MS: u64 = 20 * 1000;

/// An admitted call: what it reserved, to be settled when it ends. Serialized with a turn
/// handed to the turn object, and kept by it so that a restarted object can settle it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Admission {
    user_id: String,
    day: String,
    reservation_id: String,
    reserved: u64,
    stream_id: Option<String>,
}

/// One call to admit: its model, who it is billed to, what it reserves, and whether it
/// streams. The minute, the day, the reservation's id and the stream slot's id are fixed
/// when it is made, so that the writes made only if it is admitted ([`Call::reservation`])
/// name what its counting takes.
pub struct Call<'a> {
    model: &'a str,
    source: &'static str,
    api_key_id: Option<&'a str>,
    reserve: Reserve,
    now: u64,
    day: String,
    reservation_id: String,
    stream_id: Option<String>,
}

impl<'a> Call<'a> {
    /// A call of `model` from `source` (`chat` or `gateway`), made with `api_key_id` if a key.
    pub fn new(
        model: &'a str,
        source: &'static str,
        api_key_id: Option<&'a str>,
        reserve: Reserve,
        streaming: bool,
    ) -> Result<Self, AppError> {
        let now = runtime::now_ms();
        let stream_id = if streaming { Some(StreamId::new(runtime::random_bytes()?).into()) } else { None };
        let reservation_id = ids::new_id("rsv", runtime::random_bytes()?);
        Ok(Call { model, source, api_key_id, reserve, now, day: day_window(now).0, reservation_id, stream_id })
    }

    /// The call's marks in D1, for writes that must happen only if it is admitted
    /// ([`admit_with`]).
    pub fn reservation(&self) -> Reservation<'_> {
        Reservation { marker: &self.reservation_id, day: &self.day, stream_id: self.stream_id.as_deref() }
    }

    fn limits(&self, plan: &Plan) -> quotas::Limits<'_> {
        quotas::Limits {
            window_start: minute_window(self.now).0,
            requests_per_minute: u64::from(plan.requests_per_minute),
            tokens_per_day: plan.tokens_per_day,
            reservation: quotas::Reserved {
                reservation_id: &self.reservation_id,
                day: &self.day,
                prompt_tokens: self.reserve.prompt_tokens,
                completion_tokens: self.reserve.completion_tokens,
                model: self.model,
                source: self.source,
                api_key_id: self.api_key_id,
                now: self.now,
                expires_at: self.now + RESERVATION_LEASE_MS,
            },
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
        let reserved = self.reserve.total();
        let (limit, release_stream, return_tokens) = match plans::decide(counts, plan) {
            Decision::Admitted => {
                return Ok(Admission {
                    user_id: user_id.to_owned(),
                    day: self.day,
                    reservation_id: self.reservation_id,
                    reserved,
                    stream_id: self.stream_id,
                })
            }
            Decision::Refused { limit, release_stream, return_tokens } => (limit, release_stream, return_tokens),
        };
        if let Some(id) = self.stream_id.as_deref().filter(|_| release_stream) {
            quotas::release_stream(db, id).await?;
        }
        if return_tokens {
            quotas::return_tokens(db, user_id, &self.day, reserved).await?;
        }
        Err(limit.refusal(plan, self.now, reserved).into())
    }
}

/// Checks and counts the user's plan limits for `call`: 403 for a model outside the plan,
/// 429 with `Retry-After` and `RateLimit-*` for any exhausted limit.
pub async fn admit(cx: &mut Ctx<'_>, user: &User, call: Call<'_>) -> Result<Admission, AppError> {
    admit_with(cx, user, call, Vec::new()).await.map(|(admission, _)| admission)
}

/// [`admit`], with `writes` in the same D1 batch after the counts (one round trip). Each write
/// must require the call's [`Call::reservation`]: then a refused call writes nothing. The
/// writes' results come back in order.
pub async fn admit_with(
    cx: &mut Ctx<'_>,
    user: &User,
    call: Call<'_>,
    writes: Vec<D1PreparedStatement>,
) -> Result<(Admission, Vec<D1Result>), AppError> {
    let config = cx.config.clone();
    let db = cx.db()?;
    admit_on(&db, &config, user, call, writes).await
}

/// [`admit_with`] without a request: for the later model calls of a running turn.
pub async fn admit_on(
    db: &Db,
    config: &Config,
    user: &User,
    call: Call<'_>,
    writes: Vec<D1PreparedStatement>,
) -> Result<(Admission, Vec<D1Result>), AppError> {
    let plan = config.plans.get(&user.plan);
    call.check_model(plan)?;
    let limits = call.limits(plan);
    let mut statements = quotas::count_statements(db, &user.user_id, &limits)?;
    let counts = statements.len();
    statements.extend(writes);
    let mut results = db.batch("count request", statements).await?;
    let written = results.split_off(counts.min(results.len()));
    let counts = quotas::counts(&limits, &results)?;
    let admission = call.verdict(db, counts, plan, &user.user_id).await?;
    Ok((admission, written))
}

impl Admission {
    /// Whether the call holds a stream slot.
    pub fn streams(&self) -> bool {
        self.stream_id.is_some()
    }

    /// The tokens reserved at admission.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    fn reservation(&self) -> Reservation<'_> {
        Reservation { marker: &self.reservation_id, day: &self.day, stream_id: self.stream_id.as_deref() }
    }

    /// The writes that replace the reservation by the tokens really used and free the stream
    /// slot, to batch with the call's other final writes.
    pub fn settle_statements(&self, db: &Db, used_tokens: u64) -> Result<Vec<D1PreparedStatement>, AppError> {
        let delta = used_tokens as i64 - self.reserved as i64;
        quotas::settle_statements(db, &self.user_id, &self.reservation(), delta)
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

    /// The call's hold on its reservation and stream slot, for [`renewing`].
    pub fn lease(&self, env: &Env) -> Lease {
        Lease { env: env.clone(), held: Rc::new(RefCell::new(self.held())) }
    }

    fn held(&self) -> Held {
        Held { reservation_id: self.reservation_id.clone(), stream_id: self.stream_id.clone() }
    }
}

/// A running call's hold on its reservation and its stream slot, which expire unless renewed.
/// Clones share the hold: a turn that makes another model call moves it to that call's
/// admission ([`Lease::follow`]).
#[derive(Clone)]
pub struct Lease {
    env: Env,
    held: Rc<RefCell<Held>>,
}

struct Held {
    reservation_id: String,
    stream_id: Option<String>,
}

impl Lease {
    /// Renews `admission`'s reservation and slot from now on, instead of the earlier call's.
    pub fn follow(&self, admission: &Admission) {
        *self.held.borrow_mut() = admission.held();
    }

    async fn renew(&self) {
        let Ok(d1) = bindings::d1(&self.env) else { return };
        let db = Db::new(d1);
        let now = runtime::now_ms();
        let statements = {
            let held = self.held.borrow();
            let (id, stream) = (&held.reservation_id, held.stream_id.as_deref());
            quotas::renew_statements(&db, id, stream, now, now + RESERVATION_LEASE_MS)
        };
        let Ok(statements) = statements else { return };
        let _ = db.batch("renew lease", statements).await;
    }
}

/// Runs `call` to its end, renewing `lease` every [`RENEW_EVERY_MS`] meanwhile: a call that
/// runs keeps its stream slot and its reservation, one whose instance died loses both.
pub async fn renewing<F: Future>(lease: Lease, call: F) -> F::Output {
    let renewals = pin!(async {
        loop {
            runtime::delay(RENEW_EVERY_MS).await;
            lease.renew().await;
        }
    });
    match select(pin!(call), renewals).await {
        Either::Left((output, _)) => output,
        Either::Right((_, call)) => call.await,
    }
}
