// bench/reference-turns.js — the JavaScript reference's turn object (class `RefTurns`, binding
// `TURNS`, SQLite-backed, one per user): edgechat's `UserTurns` (src/objects/) written as a
// plain JavaScript Durable Object, with the same storage and the same work per event.
// - `POST /start` with the turn's spec (the Worker has authenticated, parsed and admitted it,
//   and stored the user message and the `streaming` placeholder): records the turn, sets an
//   alarm, answers with its first reader, then runs it: calls the upstream, reads it in passes
//   (src/js/gather.js, edgechat's own: one pass takes whatever has arrived), decodes each pass
//   into one `delta` event, records every event in memory and in storage (one INSERT each)
//   and writes it to every reader; `: ping` after 15 s without output; then the message, its
//   usage record and the plan's settlement in one D1 batch, `done` (or `error`), the turn
//   marked finished and the readers ended.
// - `GET /stream?message_id=...&after=N`: a new reader from the event after N: the kept
//   events at once (a `: ping` if none), then the live ones; a finished turn's stored events.
//   400 for an event not sent yet, 404 for a turn it does not keep.
// Every call first looks for turns an earlier life of the object left running, as edgechat's
// does (the reference only marks them finished: the bench never restarts an object).
import { DurableObject } from 'cloudflare:workers';
import { Gather } from '../src/js/gather.js';
import { SQL } from './floor-worker.js';

const SCHEMA = 'CREATE TABLE IF NOT EXISTS turns (' +
  'message_id TEXT PRIMARY KEY, spec TEXT NOT NULL, admission TEXT NOT NULL, ' +
  'is_finished INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL, finished_at INTEGER); ' +
  'CREATE TABLE IF NOT EXISTS events (message_id TEXT NOT NULL, event_id INTEGER NOT NULL, ' +
  'name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (message_id, event_id)) WITHOUT ROWID';
const INSERT_TURN = 'INSERT INTO turns (message_id, spec, admission, is_finished, started_at) VALUES (?, ?, ?, 0, ?)';
const FINISH_TURN = 'UPDATE turns SET is_finished = 1, finished_at = ? WHERE message_id = ?';
const SELECT_UNFINISHED = 'SELECT message_id FROM turns WHERE is_finished = 0';
const INSERT_EVENT = 'INSERT OR REPLACE INTO events (message_id, event_id, name, data) VALUES (?, ?, ?, ?)';
const SELECT_EVENTS = 'SELECT event_id, name, data FROM events WHERE message_id = ? ORDER BY event_id';
const DELETE_OLD_EVENTS = 'DELETE FROM events WHERE message_id IN (SELECT message_id FROM turns WHERE is_finished = 1 AND finished_at < ?)';
const DELETE_OLD_TURNS = 'DELETE FROM turns WHERE is_finished = 1 AND finished_at < ?';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ALARM_EVERY_MS = 10_000;
const EVENTS_KEPT_MS = 24 * 60 * 60 * 1000;
const HEARTBEAT_MS = 15_000;
const STALL_MS = 30_000;
const RENEW_EVERY_MS = 20_000;
const RESERVATION_LEASE_MS = 120_000;
const SSE_HEADERS = { 'content-type': 'text/event-stream' };

/** One SSE event as edgechat encodes it (JSON data has no raw line breaks: one `data:` line). */
const sseEvent = (name, id, data) => `id: ${id}\nevent: ${name}\ndata: ${data}\n\n`;

/** A stored message row as edgechat's message view. */
export function messageView(m) {
  const usage = m.prompt_tokens === null || m.completion_tokens === null ? null : {
    prompt_tokens: m.prompt_tokens, completion_tokens: m.completion_tokens,
    total_tokens: m.prompt_tokens + m.completion_tokens, is_estimated: m.is_usage_estimated !== 0,
  };
  return {
    message_id: m.message_id, conversation_id: m.conversation_id, parent_id: m.parent_id, role: m.role, content: m.content,
    status: m.status, model: m.model, provider: m.provider, usage, time_to_first_token_ms: m.time_to_first_token_ms,
    duration_ms: m.duration_ms, created_at: new Date(m.created_at).toISOString(), steps: m.steps ? JSON.parse(m.steps) : [],
  };
}

const failure = (status, code, message) => Response.json({ error: { code, message } }, { status });

export class RefTurns extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
    /** Running turns by assistant message id. */
    this.live = new Map();
  }

  async fetch(request) {
    this.recover();
    const url = new URL(request.url);
    if (url.pathname === '/start' && request.method === 'POST') return this.start(await request.json());
    if (url.pathname === '/stream' && request.method === 'GET') {
      return this.stream(url.searchParams.get('message_id'), Number(url.searchParams.get('after') ?? 0));
    }
    return failure(404, 'route_not_found', 'no such call');
  }

  async alarm() {
    this.recover();
    const cutoff = Date.now() - EVENTS_KEPT_MS;
    this.sql.exec(DELETE_OLD_EVENTS, cutoff);
    this.sql.exec(DELETE_OLD_TURNS, cutoff);
    if (this.live.size) await this.ctx.storage.setAlarm(Date.now() + ALARM_EVERY_MS);
  }

  /** Turns recorded as running that do not run here: marked finished. */
  recover() {
    for (const { message_id: id } of this.sql.exec(SELECT_UNFINISHED).toArray()) {
      if (!this.live.has(id)) this.sql.exec(FINISH_TURN, Date.now(), id);
    }
  }

  async start(spec) {
    const id = spec.assistant_message_id;
    try {
      this.sql.exec(INSERT_TURN, id, JSON.stringify(spec), JSON.stringify(spec.admission), spec.started_at);
    } catch {
      return failure(409, 'turn_exists', 'this turn has already started');
    }
    const turn = { id, spec, events: [], readers: new Set(), finished: false, lastSent: Date.now() };
    const response = this.attach(turn, 0);
    this.live.set(id, turn);
    const soon = Date.now() + ALARM_EVERY_MS;
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > soon) await this.ctx.storage.setAlarm(soon);
    this.ctx.waitUntil(this.run(turn));
    return response;
  }

  stream(id, after) {
    const live = this.live.get(id);
    const events = live ? live.events : this.sql.exec(SELECT_EVENTS, id).toArray();
    if (!live && events.length === 0) return failure(404, 'turn_not_kept', "this turn's events are no longer kept");
    if (after > events.length) return failure(400, 'invalid_event_id', `event ${after} does not exist: the latest event of this turn is ${events.length}`);
    return this.attach(live ?? { events, readers: new Set(), finished: true }, after);
  }

  /** A reader of `turn` from the event after `after`: kept events now, live ones as they come. */
  attach(turn, after) {
    const { readable, writable } = new TransformStream();
    const reader = writable.getWriter();
    const replay = turn.events.filter((e) => e.event_id > after).map((e) => sseEvent(e.name, e.event_id, e.data)).join('');
    // A comment first: the reader's response starts at once even with nothing to replay.
    this.write(turn, reader, replay || ': ping\n\n');
    if (turn.finished) reader.close().catch(() => {});
    else turn.readers.add(reader);
    return new Response(readable, { headers: SSE_HEADERS });
  }

  /** Writes to one reader; a reader that has gone is dropped at its first failed write. */
  write(turn, reader, text) {
    reader.write(encoder.encode(text)).catch(() => turn.readers.delete(reader));
  }

  /** Numbers, records (memory and storage) and sends one event. */
  record(turn, name, data) {
    const id = turn.events.length + 1;
    this.sql.exec(INSERT_EVENT, turn.id, id, name, data);
    turn.events.push({ event_id: id, name, data });
    const text = sseEvent(name, id, data);
    for (const reader of turn.readers) this.write(turn, reader, text);
    turn.lastSent = Date.now();
  }

  /** Calls the upstream, records its text as deltas, then finalizes in D1 and ends the readers. */
  async run(turn) {
    const { spec } = turn;
    const db = this.env.DB;
    this.record(turn, 'message', spec.first_event);
    // The turn keeps its reservation and its stream slot while it runs.
    const renewals = setInterval(() => {
      const at = Date.now();
      this.ctx.waitUntil(db.batch([
        db.prepare(SQL.RENEW_RESERVATION).bind(spec.admission.reservation_id, at + RESERVATION_LEASE_MS),
        db.prepare(SQL.RENEW_STREAM).bind(spec.admission.stream_id, at),
      ]));
    }, RENEW_EVERY_MS);
    let text = '';
    let usage = null;
    let firstTokenAt = null;
    let error = null;
    let gather = null;
    let lastInput = Date.now();
    let timer = null;
    // One timer, re-armed when it fires: a heartbeat after 15 s without output, a stall after 30 s without input.
    const tick = () => {
      const now = Date.now();
      if (now >= lastInput + STALL_MS) return gather?.cancel();
      if (now >= turn.lastSent + HEARTBEAT_MS) {
        for (const r of turn.readers) this.write(turn, r, ': ping\n\n');
        turn.lastSent = now;
      }
      timer = setTimeout(tick, Math.max(1, Math.min(lastInput + STALL_MS, turn.lastSent + HEARTBEAT_MS) - now));
    };
    timer = setTimeout(tick, HEARTBEAT_MS);
    try {
      const upstream = await fetch(`${this.env.OPENAI_BASE_URL}/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec.upstream_body),
      });
      if (!upstream.ok) throw new Error(`upstream status ${upstream.status}`);
      gather = new Gather(upstream.body);
      let pending = '';
      let ended = false;
      for (let bytes; (bytes = await gather.take()) !== null;) {
        lastInput = Date.now();
        // One pass over whatever has arrived: its complete lines (the rest waits), one delta.
        pending += decoder.decode(bytes, { stream: true });
        const cut = pending.lastIndexOf('\n');
        if (cut < 0) continue;
        const lines = pending.slice(0, cut).split('\n');
        pending = pending.slice(cut + 1);
        let delta = '';
        for (const line of lines) {
          if (!line.startsWith('data: ')) continue;
          if (line === 'data: [DONE]') { ended = true; continue; }
          let chunk;
          try { chunk = JSON.parse(line.slice(6)); } catch { continue; }
          delta += chunk.choices?.[0]?.delta?.content ?? '';
          if (chunk.usage) usage = chunk.usage;
        }
        if (!delta) continue;
        firstTokenAt ??= Date.now();
        text += delta;
        this.record(turn, 'delta', JSON.stringify({ text: delta }));
      }
      if (!ended) error = { code: 'upstream_error', message: "the model's stream ended early" };
    } catch {
      error = { code: 'upstream_error', message: Date.now() >= lastInput + STALL_MS ? 'the model sent nothing for 30000 ms' : "the model's stream broke off" };
    }
    clearTimeout(timer);
    clearInterval(renewals);
    const now = Date.now();
    const status = error ? 'error' : 'complete';
    const estimated = !usage;
    const used = usage ?? { prompt_tokens: spec.prompt_estimate, completion_tokens: Math.ceil(text.length / 4) };
    const ttft = firstTokenAt === null ? null : firstTokenAt - spec.started_at;
    const a = spec.admission;
    let message = null;
    try {
      const [finalized] = await db.batch([
        db.prepare(SQL.FINALIZE_ASSISTANT).bind(turn.id, text, status, spec.model, 'openai', used.prompt_tokens, used.completion_tokens,
          estimated ? 1 : 0, ttft, now - spec.started_at, null),
        db.prepare(SQL.TOUCH_CONVERSATION).bind(spec.conversation_id, now, null),
        db.prepare(SQL.BUMP_CACHE_VERSION).bind(spec.user_id),
        db.prepare(SQL.INSERT_USAGE).bind(`use_${crypto.randomUUID().replaceAll('-', '')}`, spec.user_id, null, 'chat', spec.model, 'openai',
          status, used.prompt_tokens, used.completion_tokens, estimated ? 1 : 0, 0, now),
        db.prepare(SQL.SETTLE_TOKENS).bind(spec.user_id, a.day, used.prompt_tokens + used.completion_tokens - a.reserved, a.reservation_id),
        db.prepare(SQL.FORGET_RESERVATION).bind(a.reservation_id),
        db.prepare(SQL.RELEASE_STREAM).bind(a.stream_id),
      ]);
      message = finalized.results[0] ?? null;
    } catch {
      error ??= { code: 'internal_error', message: 'the answer could not be stored' };
    }
    console.log(JSON.stringify({
      level: 'info', msg: 'turn', request_id: spec.request_id, user_id: spec.user_id, status, model: spec.model, provider: 'openai',
      time_to_first_token_ms: ttft, duration_ms: now - spec.started_at, completion_tokens: used.completion_tokens,
      malformed_chunks: 0, steps: 1, tool_calls: 0, error_code: error?.code ?? null,
    }));
    const view = message ? messageView(message) : null;
    if (error) this.record(turn, 'error', JSON.stringify({ error, assistant_message: view }));
    else this.record(turn, 'done', JSON.stringify({ assistant_message: view }));
    this.sql.exec(FINISH_TURN, Date.now(), turn.id);
    this.live.delete(turn.id);
    turn.finished = true;
    for (const r of turn.readers) r.close().catch(() => {});
    turn.readers.clear();
  }
}
