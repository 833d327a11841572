//! One running turn's events and readers, inside the turn object: each event is numbered,
//! recorded (in memory for readers that join, in the object's storage for a restart) and
//! written to every connected reader; heartbeats; the stop signal.

use crate::quota::Admission;
use crate::runtime::streams::{BodyWriter, Sent};
use edgechat_core::log::failure_line;
use edgechat_core::serde_json;
use edgechat_core::llm::sse::{encode_comment, encode_event};
use edgechat_core::turns::Recorded;
use futures_channel::{mpsc, oneshot};
use std::cell::{Cell, RefCell};
use worker::{AbortController, SqlStorage};

/// A reader whose unsent bytes pass this is dropped (it can resume with `Last-Event-ID`).
const MAX_BACKLOG: usize = 1 << 20;

const INSERT_EVENT: &str = "INSERT OR REPLACE INTO events (message_id, event_id, name, data) VALUES (?, ?, ?, ?)";
const UPDATE_ADMISSION: &str = "UPDATE turns SET admission = ? WHERE message_id = ?";

struct Reader {
    body: BodyWriter,
    /// What the reader's buffer had no room for yet, sent before anything newer.
    backlog: Vec<u8>,
}

impl Reader {
    /// Writes `bytes` after the backlog; false once the reader has gone (or fell too far behind).
    fn write(&mut self, bytes: &[u8]) -> bool {
        let chunk = if self.backlog.is_empty() {
            bytes.to_vec()
        } else {
            let mut all = std::mem::take(&mut self.backlog);
            all.extend_from_slice(bytes);
            all
        };
        match self.body.send(chunk) {
            Sent::Queued => true,
            Sent::Full(kept) => {
                self.backlog = kept;
                self.backlog.len() <= MAX_BACKLOG
            }
            Sent::Gone => false,
        }
    }
}

/// The live side of one turn.
pub struct Hub {
    message_id: String,
    request_id: String,
    storage: Option<SqlStorage>,
    events: RefCell<Vec<Recorded>>,
    readers: RefCell<Vec<Reader>>,
    /// The old rule: stop when the last reader leaves.
    stop_when_alone: bool,
    cancelled: Cell<bool>,
    finished: Cell<bool>,
    /// The running model call, aborted by a stop.
    upstream: RefCell<Option<AbortController>>,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// Told of a stop: waits on the upstream (before its first byte, a retry's pause) end at
    /// once instead of at the next heartbeat.
    stop_signals: RefCell<Vec<mpsc::UnboundedSender<()>>>,
}

impl Hub {
    /// A hub for the turn answering with `message_id`; events are also written to `storage`.
    pub fn new(message_id: &str, request_id: &str, storage: Option<SqlStorage>, stop_when_alone: bool) -> Self {
        Self {
            message_id: message_id.to_owned(),
            request_id: request_id.to_owned(),
            storage,
            events: RefCell::new(Vec::new()),
            readers: RefCell::new(Vec::new()),
            stop_when_alone,
            cancelled: Cell::new(false),
            finished: Cell::new(false),
            upstream: RefCell::new(None),
            waiters: RefCell::new(Vec::new()),
            stop_signals: RefCell::new(Vec::new()),
        }
    }

    /// The latest event's id (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.events.borrow().len() as u64
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    pub fn is_finished(&self) -> bool {
        self.finished.get()
    }

    /// A hub for a turn whose first events were recorded by an earlier life of the object.
    pub fn recovered(message_id: &str, request_id: &str, storage: SqlStorage, events: Vec<Recorded>) -> Self {
        let hub = Self::new(message_id, request_id, Some(storage), false);
        *hub.events.borrow_mut() = events;
        hub
    }

    /// The answer's text as the recorded `delta` events carried it.
    pub fn text(&self) -> String {
        edgechat_core::turns::text_of(&self.events.borrow())
    }

    /// Numbers, records and sends one event; its id.
    pub fn record(&self, name: &str, data: &str) -> u64 {
        let id = self.last_id() + 1;
        if let Some(sql) = &self.storage {
            let args = vec![self.message_id.clone().into(), (id as f64).into(), name.to_owned().into(), data.to_owned().into()];
            if let Err(e) = sql.exec(INSERT_EVENT, args) {
                self.log_failure("turn event not recorded", &e.to_string());
            }
        }
        self.events.borrow_mut().push(Recorded { event_id: id, name: name.to_owned(), data: data.to_owned() });
        self.broadcast(encode_event(name, id, data).as_bytes());
        id
    }

    /// Writes bytes to every reader, dropping those that have gone; with the old rule, the
    /// turn stops when the last one has.
    pub fn broadcast(&self, bytes: &[u8]) {
        let mut readers = self.readers.borrow_mut();
        let before = readers.len();
        readers.retain_mut(|r| r.write(bytes));
        if self.stop_when_alone && before > 0 && readers.is_empty() {
            drop(readers);
            self.cancel();
        }
    }

    /// Adds a reader: it is sent every event after `after` at once, then each new one. A
    /// finished turn's reader gets the rest and its body ends.
    pub fn attach(&self, body: BodyWriter, after: u64) {
        let mut reader = Reader { body, backlog: Vec::new() };
        let replay: String = self
            .events
            .borrow()
            .iter()
            .filter(|e| e.event_id > after)
            .map(|e| encode_event(&e.name, e.event_id, &e.data))
            .collect();
        // A comment first: the reader's response starts at once even with nothing to replay.
        let first = if replay.is_empty() { encode_comment("ping") } else { replay };
        if reader.write(first.as_bytes()) && !self.is_finished() {
            self.readers.borrow_mut().push(reader);
        } else if self.is_finished() {
            let mut readers = vec![reader];
            wasm_bindgen_futures::spawn_local(async move { flush(&mut readers).await });
        }
    }

    /// The model call a stop must abort (aborted at once if the turn is already stopped).
    pub fn watch(&self, controller: AbortController) {
        if self.is_cancelled() {
            controller.abort();
            return;
        }
        *self.upstream.borrow_mut() = Some(controller);
    }

    /// Aborts the model call being watched, if any (its stream is no longer read).
    pub fn abort_upstream(&self) {
        if let Some(controller) = self.upstream.borrow_mut().take() {
            controller.abort();
        }
    }

    /// Keeps the running call's admission in storage: a restarted object settles it.
    pub fn hold(&self, admission: &Admission) {
        let Some(sql) = &self.storage else { return };
        let Ok(json) = serde_json::to_string(admission) else { return };
        if let Err(e) = sql.exec(UPDATE_ADMISSION, vec![json.into(), self.message_id.clone().into()]) {
            self.log_failure("turn admission not kept", &e.to_string());
        }
    }

    fn log_failure(&self, context: &'static str, cause: &str) {
        crate::runtime::log(&failure_line(&self.request_id, context, cause));
    }

    /// Stops the turn: the running model call is aborted; the turn then stores its answer as
    /// `cancelled` and sends its last event.
    pub fn cancel(&self) {
        if self.cancelled.replace(true) || self.is_finished() {
            return;
        }
        if let Some(controller) = self.upstream.borrow_mut().take() {
            controller.abort();
        }
        for signal in self.stop_signals.borrow_mut().drain(..) {
            let _ = signal.unbounded_send(());
        }
    }

    /// A signal that fires when the turn is stopped.
    pub fn stop_signal(&self) -> mpsc::UnboundedReceiver<()> {
        let (tx, rx) = mpsc::unbounded();
        if self.is_cancelled() {
            let _ = tx.unbounded_send(());
        } else {
            self.stop_signals.borrow_mut().push(tx);
        }
        rx
    }

    /// Ends the turn: readers get what is still owed them, then their bodies end; those
    /// waiting on [`Hub::finished`] are woken.
    pub async fn finish(&self) {
        self.finished.set(true);
        let mut readers = std::mem::take(&mut *self.readers.borrow_mut());
        flush(&mut readers).await;
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Resolves once the turn has ended.
    pub async fn finished(&self) {
        if self.is_finished() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        let _ = rx.await;
    }
}

/// Sends each reader its backlog (waiting for room, at most a few seconds), then drops it.
async fn flush(readers: &mut Vec<Reader>) {
    for r in readers.iter_mut() {
        if r.backlog.is_empty() {
            continue;
        }
        let room = match futures_util::future::select(Box::pin(r.body.drained()), crate::runtime::delay(5_000)).await {
            futures_util::future::Either::Left((room, _)) => room,
            futures_util::future::Either::Right(_) => false,
        };
        if room {
            let rest = std::mem::take(&mut r.backlog);
            let _ = r.body.send(rest);
        }
    }
    readers.clear();
}
