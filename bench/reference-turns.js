// bench/reference-turns.js — the JavaScript reference's Durable Object for chat turns (class
// `RefTurns`, binding `TURNS`, SQLite-backed, one object per user): the same design as
// edgechat's `UserTurns`, written as a plain JavaScript Durable Object.
// - `POST /start` with the turn's spec (the Worker has authenticated, parsed and admitted it,
//   and stored the user message and the `streaming` placeholder): calls the upstream, decodes
//   its SSE, and turns each pass over whatever upstream bytes have arrived into one `delta`
//   event (after `message`, id 1); every event is kept in memory and in the object's SQLite
//   storage (one INSERT per pass) and written to every connected reader; readers get `: ping`
//   heartbeats; at the end the message, its usage record and the plan's settlement are written
//   to D1 in one batch, then `done` (or `error`) goes out and the readers are closed. The
//   response is the turn's first reader.
// - `GET /stream?message_id=...&after=N`: a new reader of that turn, from the event after N:
//   the kept events at once, then the live ones; a finished turn's stored events, then close.
import { DurableObject } from 'cloudflare:workers';
import { SQL } from './floor-worker.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEARTBEAT_MS = 15_000;
const RENEW_EVERY_MS = 20_000;
const STREAM_LEASE_MS = 60_000;
const RESERVATION_LEASE_MS = 120_000;
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

/** One SSE event as edgechat encodes it (data on `data:` lines; JSON has no raw line breaks). */
export const sseEvent = (name, id, data) => `id: ${id}\nevent: ${name}\ndata: ${data}\n\n`;

/** An RFC 3339 time in UTC with milliseconds, as edgechat's views show times. */
const rfc3339 = (ms) => new Date(ms).toISOString();

/** A stored message row as edgechat's message view. */
export function messageView(m) {
  const usage = m.prompt_tokens === null || m.completion_tokens === null ? null : {
    prompt_tokens: m.prompt_tokens, completion_tokens: m.completion_tokens,
    total_tokens: m.prompt_tokens + m.completion_tokens, is_estimated: m.is_usage_estimated !== 0,
  };
  return {
    message_id: m.message_id, conversation_id: m.conversation_id, parent_id: m.parent_id, role: m.role, content: m.content,
    status: m.status, model: m.model, provider: m.provider, usage, time_to_first_token_ms: m.time_to_first_token_ms,
    duration_ms: m.duration_ms, created_at: rfc3339(m.created_at), steps: m.steps ? JSON.parse(m.steps) : [],
  };
}

export class RefTurns extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS turn_events (message_id TEXT NOT NULL, event_id INTEGER NOT NULL, ' +
      'data TEXT NOT NULL, PRIMARY KEY (message_id, event_id))');
    /** Running turns by assistant message id. */
    this.turns = new Map();
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/start') {
      const spec = await request.json();
      const turn = { spec, events: [], readers: new Set(), finished: false };
      this.turns.set(spec.assistant_message_id, turn);
      this.publish(turn, 'message', spec.first_event);
      this.ctx.waitUntil(this.run(turn));
      return this.reader(turn, 0);
    }
    if (url.pathname === '/stream') {
      const id = url.searchParams.get('message_id');
      const after = Number(url.searchParams.get('after') ?? 0);
      const live = this.turns.get(id);
      if (live) return this.reader(live, after);
      const stored = this.sql.exec('SELECT event_id, data FROM turn_events WHERE message_id = ? ORDER BY event_id', id).toArray();
      if (stored.length === 0) return new Response('no such turn', { status: 404 });
      const turn = { events: stored.map((e) => ({ id: e.event_id, text: e.data })), readers: new Set(), finished: true };
      return this.reader(turn, after);
    }
    return new Response('unknown', { status: 404 });
  }

  /** A reader of `turn` from the event after `after`: kept events now, live ones as they come. */
  reader(turn, after) {
    const { readable, writable } = new TransformStream();
    const reader = { writer: writable.getWriter() };
    const backlog = turn.events.filter((e) => e.id > after).map((e) => e.text).join('');
    if (backlog) this.write(turn, reader, backlog);
    if (turn.finished) reader.writer.close().catch(() => {});
    else turn.readers.add(reader);
    return new Response(readable, { headers: SSE_HEADERS });
  }

  /** Writes to one reader; a reader that has gone is dropped at its first failed write. */
  write(turn, reader, text) {
    reader.writer.write(encoder.encode(text)).catch(() => turn.readers.delete(reader));
  }

  /** The next event of `turn`: kept in memory and in storage, written to every reader. */
  publish(turn, name, data) {
    const id = turn.events.length + 1;
    const text = sseEvent(name, id, data);
    turn.events.push({ id, text });
    this.sql.exec('INSERT INTO turn_events (message_id, event_id, data) VALUES (?, ?, ?)', turn.spec.assistant_message_id, id, text);
    for (const reader of turn.readers) this.write(turn, reader, text);
  }

  /** Calls the upstream, relays its text as deltas, then finalizes in D1 and ends the readers. */
  async run(turn) {
    const { spec } = turn;
    const env = this.env;
    const heartbeat = setInterval(() => { for (const r of turn.readers) this.write(turn, r, ': ping\n\n'); }, HEARTBEAT_MS);
    // The turn keeps its reservation and its stream slot while it runs.
    const renewals = setInterval(() => {
      const at = Date.now();
      this.ctx.waitUntil(env.DB.batch([
        env.DB.prepare(SQL.RENEW_RESERVATION).bind(spec.reservation_id, at + RESERVATION_LEASE_MS),
        env.DB.prepare(SQL.RENEW_STREAM).bind(spec.stream_id, at),
      ]));
    }, RENEW_EVERY_MS);
    let text = '';
    let usage = null;
    let firstTokenAt = null;
    let failure = null;
    let finished = false;
    try {
      const upstream = await fetch(`${env.OPENAI_BASE_URL}/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec.upstream_body),
      });
      if (!upstream.ok) throw new Error(`upstream status ${upstream.status}`);
      const reader = upstream.body.getReader();
      let pending = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // One pass over whatever has arrived: its complete lines, the rest kept for the next.
        pending += decoder.decode(value, { stream: true });
        const cut = pending.lastIndexOf('\n');
        if (cut < 0) continue;
        const lines = pending.slice(0, cut).split('\n');
        pending = pending.slice(cut + 1);
        let delta = '';
        for (const line of lines) {
          if (!line.startsWith('data: ')) continue;
          if (line === 'data: [DONE]') { finished = true; continue; }
          let chunk;
          try { chunk = JSON.parse(line.slice(6)); } catch { continue; }
          delta += chunk.choices?.[0]?.delta?.content ?? '';
          if (chunk.usage) usage = chunk.usage;
        }
        if (!delta) continue;
        firstTokenAt ??= Date.now();
        text += delta;
        this.publish(turn, 'delta', JSON.stringify({ text: delta }));
      }
      if (!finished) failure = { code: 'upstream_error', message: "the model's stream ended early" };
    } catch {
      failure = { code: 'upstream_error', message: 'the model failed' };
    }
    clearInterval(renewals);
    const now = Date.now();
    const status = failure ? 'error' : 'complete';
    const estimated = !usage;
    const used = usage ?? { prompt_tokens: spec.prompt_estimate, completion_tokens: Math.ceil(text.length / 4) };
    const db = env.DB;
    let message = null;
    try {
      const [finalized] = await db.batch([
        db.prepare(SQL.FINALIZE_ASSISTANT).bind(spec.assistant_message_id, text, status, spec.model, 'openai',
          used.prompt_tokens, used.completion_tokens, estimated ? 1 : 0, firstTokenAt === null ? null : firstTokenAt - spec.started_at,
          now - spec.started_at, null),
        db.prepare(SQL.TOUCH_CONVERSATION).bind(spec.conversation_id, now, null),
        db.prepare(SQL.BUMP_CACHE_VERSION).bind(spec.user_id),
        db.prepare(SQL.INSERT_USAGE).bind(`use_${crypto.randomUUID().replaceAll('-', '')}`, spec.user_id, null, 'chat', spec.model, 'openai',
          status, used.prompt_tokens, used.completion_tokens, estimated ? 1 : 0, 0, now),
        db.prepare(SQL.SETTLE_TOKENS).bind(spec.user_id, spec.day, used.prompt_tokens + used.completion_tokens - spec.reserved, spec.reservation_id),
        db.prepare(SQL.FORGET_RESERVATION).bind(spec.reservation_id),
        db.prepare(SQL.RELEASE_STREAM).bind(spec.stream_id),
      ]);
      message = finalized.results[0] ?? null;
    } catch {
      failure ??= { code: 'internal_error', message: 'the answer could not be stored' };
    }
    console.log(JSON.stringify({
      level: 'info', msg: 'turn', request_id: spec.request_id, user_id: spec.user_id, status, model: spec.model, provider: 'openai',
      time_to_first_token_ms: firstTokenAt === null ? null : firstTokenAt - spec.started_at, duration_ms: now - spec.started_at,
      completion_tokens: used.completion_tokens, malformed_chunks: 0, steps: 1, tool_calls: 0, error_code: failure?.code ?? null,
    }));
    const view = message ? messageView(message) : null;
    if (failure) this.publish(turn, 'error', JSON.stringify({ error: failure, assistant_message: view }));
    else this.publish(turn, 'done', JSON.stringify({ assistant_message: view }));
    clearInterval(heartbeat);
    turn.finished = true;
    for (const r of turn.readers) r.writer.close().catch(() => {});
    turn.readers.clear();
    this.turns.delete(spec.assistant_message_id);
  }
}
