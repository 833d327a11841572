//! The turn object (`UserTurns`, one per user): runs the user's chat turns to their end
//! whoever reads them, keeps each turn's events (in memory while it runs, in its SQLite
//! storage for 24 hours) for readers that join or come back, stops a turn on request, and
//! ends as `error` any turn a previous life of the object left running.

use super::hub::Hub;
use super::{Call, StartMode, TurnOutcome, ALARM_EVERY_MS};
use crate::chat::{self, TurnSpec};
use crate::runtime::streams;
use crate::{bindings, runtime};
use edgechat_core::conversations::Message;
use edgechat_core::serde_json;
use edgechat_core::turns::{self, Recorded};
use edgechat_core::ApiError;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS turns (\
     message_id TEXT PRIMARY KEY, spec TEXT NOT NULL, admission TEXT NOT NULL, \
     is_finished INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL, finished_at INTEGER); \
     CREATE TABLE IF NOT EXISTS events (message_id TEXT NOT NULL, event_id INTEGER NOT NULL, \
     name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (message_id, event_id)) WITHOUT ROWID";
const INSERT_TURN: &str =
    "INSERT INTO turns (message_id, spec, admission, is_finished, started_at) VALUES (?, ?, ?, 0, ?)";
const FINISH_TURN: &str = "UPDATE turns SET is_finished = 1, finished_at = ? WHERE message_id = ?";
const SELECT_UNFINISHED: &str = "SELECT message_id, spec, admission FROM turns WHERE is_finished = 0";
const SELECT_EVENTS: &str = "SELECT event_id, name, data FROM events WHERE message_id = ? ORDER BY event_id";
const DELETE_OLD_EVENTS: &str =
    "DELETE FROM events WHERE message_id IN (SELECT message_id FROM turns WHERE is_finished = 1 AND finished_at < ?)";
const DELETE_OLD_TURNS: &str = "DELETE FROM turns WHERE is_finished = 1 AND finished_at < ?";
const SELECT_OLDEST_FINISHED: &str = "SELECT MIN(finished_at) AS oldest FROM turns WHERE is_finished = 1";

#[durable_object(alarm)]
pub struct UserTurns {
    state: State,
    env: Env,
    /// The turns running in this life of the object.
    live: Rc<RefCell<HashMap<String, Rc<Hub>>>>,
    /// The turns an earlier life left running have been taken up (once per life: every turn
    /// started in this one is in `live` until it is marked finished).
    recovered: Cell<bool>,
}

#[derive(Deserialize)]
struct Unfinished {
    message_id: String,
    spec: String,
    admission: String,
}

#[derive(Deserialize)]
struct Oldest {
    oldest: Option<f64>,
}

impl DurableObject for UserTurns {
    fn new(state: State, env: Env) -> Self {
        if let Err(e) = state.storage().sql().exec(SCHEMA, None) {
            runtime::log(&edgechat_core::log::failure_line("", "turn object schema", &e.to_string()));
        }
        Self { state, env, live: Rc::new(RefCell::new(HashMap::new())), recovered: Cell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.recover().await;
        let answer = match Call::read(&mut req).await {
            Ok(Call::Start { spec, spec_json, mode }) => self.start(&req, *spec, spec_json, mode).await,
            Ok(Call::Stream { message_id, after }) => self.stream(&req, &message_id, after).await,
            Ok(Call::Cancel { message_id }) => self.cancel(&message_id, true).await,
            Ok(Call::Wait { message_id }) => self.cancel(&message_id, false).await,
            Ok(Call::Forget) => self.forget().await,
            Err(e) => Err(e),
        };
        answer.or_else(|e| super::error_answer(&e))
    }

    async fn alarm(&self) -> Result<Response> {
        self.recover().await;
        let sql = self.sql();
        let cutoff = runtime::now_ms().saturating_sub(turns::EVENTS_KEPT_MS) as f64;
        let _ = sql.exec(DELETE_OLD_EVENTS, vec![cutoff.into()]);
        let _ = sql.exec(DELETE_OLD_TURNS, vec![cutoff.into()]);
        let next = if self.live.borrow().is_empty() {
            let oldest =
                sql.exec(SELECT_OLDEST_FINISHED, None).and_then(|c| c.one::<Oldest>()).ok().and_then(|o| o.oldest);
            oldest.map(|at| at as u64 + turns::EVENTS_KEPT_MS + 1000)
        } else {
            Some(runtime::now_ms() + ALARM_EVERY_MS)
        };
        if let Some(at) = next {
            let _ = self.state.storage().set_alarm(at as i64).await;
        }
        Response::empty()
    }
}

impl UserTurns {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    /// Starts a turn: records it, runs it in the background and answers its first reader (SSE)
    /// or, in JSON mode, its outcome once it has ended.
    async fn start(
        &self,
        req: &Request,
        spec: TurnSpec,
        spec_json: String,
        mode: StartMode,
    ) -> std::result::Result<Response, ApiError> {
        let message_id = spec.assistant_message_id.to_string();
        let sql = self.sql();
        let admission = serde_json::to_string(&spec.admission).map_err(|_| ApiError::internal())?;
        let row = vec![message_id.clone().into(), spec_json.into(), admission.into(), (spec.started_at as f64).into()];
        sql.exec(INSERT_TURN, row).map_err(|_| ApiError::conflict("turn_exists", "this turn has already started"))?;
        let config = bindings::config(&self.env);
        let hub = Rc::new(Hub::new(&message_id, &spec.request_id, Some(sql), config.cancel_on_disconnect));
        let reader = match mode {
            StartMode::Sse => {
                let (readable, body) = streams::body_pipe(req.inner());
                hub.attach(body, 0);
                Some(readable)
            }
            StartMode::Json => None,
        };
        let (turn, admission, first_event) = spec.into_turn(self.env.clone(), config);
        let outcome: Rc<RefCell<Option<TurnOutcome>>> = Rc::default();
        self.live.borrow_mut().insert(message_id.clone(), hub.clone());
        self.keep_awake().await;
        let (live, sql, kept, running) = (self.live.clone(), self.sql(), outcome.clone(), hub.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let lease = turn.lease.clone();
            let result = crate::quota::renewing(lease, chat::run(turn, admission, running.clone(), &first_event)).await;
            *kept.borrow_mut() = Some(TurnOutcome::of(&result));
            end(&sql, &live, &message_id, &running).await;
        });
        match reader {
            Some(readable) => super::sse_response(readable),
            None => {
                hub.finished().await;
                let outcome = outcome.borrow_mut().take().unwrap_or_else(TurnOutcome::lost);
                Response::from_json(&outcome).map_err(|_| ApiError::internal())
            }
        }
    }

    /// A reader of the turn answering with `message_id`, from after event `after`.
    async fn stream(&self, req: &Request, message_id: &str, after: u64) -> std::result::Result<Response, ApiError> {
        let live = self.live.borrow().get(message_id).cloned();
        if let Some(hub) = live {
            turns::check_resume_point(after, hub.last_id())?;
            let (readable, body) = streams::body_pipe(req.inner());
            hub.attach(body, after);
            return super::sse_response(readable);
        }
        // A kept turn has at least its first event (recorded as it starts).
        let events = self.events(message_id);
        let last = events.last().ok_or_else(super::turn_not_kept)?.event_id;
        turns::check_resume_point(after, last)?;
        let replay: String = events
            .iter()
            .filter(|e| e.event_id > after)
            .map(|e| edgechat_core::llm::sse::encode_event(&e.name, e.event_id, &e.data))
            .collect();
        let mut resp = Response::ok(replay).map_err(|_| ApiError::internal())?;
        let _ = resp.headers_mut().set("content-type", "text/event-stream");
        Ok(resp)
    }

    /// Stops the turn if it runs here (`stop`), and answers once it has stored its answer.
    async fn cancel(&self, message_id: &str, stop: bool) -> std::result::Result<Response, ApiError> {
        let live = self.live.borrow().get(message_id).cloned();
        if let Some(hub) = live {
            if stop {
                hub.cancel();
            }
            hub.finished().await;
        }
        Response::empty().map_err(|_| ApiError::internal())
    }

    /// Stops every running turn, then deletes the object's storage (and its alarm).
    async fn forget(&self) -> std::result::Result<Response, ApiError> {
        let running: Vec<Rc<Hub>> = self.live.borrow().values().cloned().collect();
        for hub in running {
            hub.cancel();
            hub.finished().await;
        }
        let storage = self.state.storage();
        storage.delete_all().await.map_err(|_| ApiError::internal())?;
        let _ = storage.delete_alarm().await;
        self.sql().exec(SCHEMA, None).map_err(|_| ApiError::internal())?;
        Response::empty().map_err(|_| ApiError::internal())
    }

    fn events(&self, message_id: &str) -> Vec<Recorded> {
        self.sql()
            .exec(SELECT_EVENTS, vec![message_id.to_owned().into()])
            .and_then(|c| c.to_array::<Recorded>())
            .unwrap_or_default()
    }

    /// An alarm soon, so that a turn still runs while no request reaches the object, and a
    /// turn left running by a restart is ended even if nobody asks for it.
    async fn keep_awake(&self) {
        let storage = self.state.storage();
        let soon = runtime::now_ms() + ALARM_EVERY_MS;
        if !matches!(storage.get_alarm().await, Ok(Some(at)) if (at as u64) <= soon) {
            let _ = storage.set_alarm(soon as i64).await;
        }
    }

    /// Ends, as `error` with what they had sent, the turns an earlier life of the object was
    /// running (recorded as running). Runs once per life; the lost turns join `live` before the
    /// first wait, so requests arriving meanwhile read them as running turns.
    async fn recover(&self) {
        if self.recovered.replace(true) {
            return;
        }
        let rows =
            self.sql().exec(SELECT_UNFINISHED, None).and_then(|c| c.to_array::<Unfinished>()).unwrap_or_default();
        let mut lost = Vec::new();
        for row in rows {
            let (Ok(mut spec), Ok(admission)) =
                (serde_json::from_str::<TurnSpec>(&row.spec), serde_json::from_str(&row.admission))
            else {
                let _ = self.sql().exec(FINISH_TURN, vec![(runtime::now_ms() as f64).into(), row.message_id.into()]);
                continue;
            };
            spec.admission = admission;
            let events = self.events(&row.message_id);
            let hub = Rc::new(Hub::recovered(&row.message_id, &spec.request_id, self.sql(), events));
            self.live.borrow_mut().insert(row.message_id.clone(), hub.clone());
            lost.push((row.message_id, spec, hub));
        }
        for (message_id, spec, hub) in lost {
            let (turn, admission, _) = spec.into_turn(self.env.clone(), bindings::config(&self.env));
            chat::interrupted(turn, admission, hub.clone()).await;
            end(&self.sql(), &self.live, &message_id, &hub).await;
        }
    }
}

/// A turn has stored its answer: marked finished, its readers given the rest, then dropped.
async fn end(sql: &SqlStorage, live: &RefCell<HashMap<String, Rc<Hub>>>, message_id: &str, hub: &Hub) {
    let _ = sql.exec(FINISH_TURN, vec![(runtime::now_ms() as f64).into(), message_id.to_owned().into()]);
    live.borrow_mut().remove(message_id);
    hub.finish().await;
}

/// What a stored answer looks like to the request that waits for it (JSON mode).
impl TurnOutcome {
    fn of(result: &chat::TurnResult) -> Self {
        TurnOutcome {
            assistant_message: result.message.clone(),
            error: result.error.as_ref().map(|(kind, message)| super::OutcomeError {
                status: kind.status(),
                code: kind.code().to_owned(),
                message: message.clone(),
            }),
        }
    }

    fn lost() -> Self {
        TurnOutcome {
            assistant_message: None::<Message>,
            error: Some(super::OutcomeError {
                status: 500,
                code: "internal_error".into(),
                message: "the turn ended without a result".into(),
            }),
        }
    }
}
