// bench/sse-client.mjs — a small SSE client that timestamps every event: time to first token, inter-chunk gaps, tokens received.
import http from 'node:http';
import { summarize, targetUrl } from './load.mjs';

/**
 * Reads one streamed answer. `kind` says how tokens arrive: 'openai' (`data:` chunks with
 * choices[0].delta.content, then `[DONE]`) or 'edgechat' (`event: delta` with {text}, then
 * `event: done`). Tokens are counted as words of the received text (every simulator token is
 * one word), so events that arrive merged still count. Resolves, never rejects:
 * { status, ttftMs, lastTokenMs, gaps, tokens, contentEvents, done, error, eventsAt, finalData }
 * (times in ms from the request). `eventsAt` has, for each named event other than `delta`
 * (edgechat's `message`, `tool_call`, `tool_result`, `done`, ...), the arrival times of every
 * one of them; `finalData` is the `done` event's data when `keepFinal` is set.
 */
export function streamOnce(agent, base, { path, headers = {}, body, kind, timeoutMs = 30_000, keepFinal = false }) {
  const url = targetUrl(base, path);
  if (url.hostname !== '127.0.0.1') throw new Error(`refusing to stream from ${url.hostname}`);
  const payload = JSON.stringify(body);
  const out = { status: null, ttftMs: null, lastTokenMs: null, gaps: [], tokens: 0, contentEvents: 0, done: false, error: null, eventsAt: {}, finalData: null };
  return new Promise((resolve) => {
    let text = '';
    let last = null;
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error && !out.error) out.error = error;
      out.tokens = (text.match(/\S+/g) ?? []).length;
      resolve(out);
    };
    const start = performance.now();
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    }, (res) => {
      out.status = res.statusCode;
      if (res.statusCode !== 200) {
        let b = '';
        res.on('data', (c) => { b += c; });
        res.on('end', () => finish(`HTTP ${res.statusCode} ${b.slice(0, 160)}`));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', eventReader((event, data) => {
        const at = performance.now() - start;
        if (kind === 'edgechat' && event !== 'delta') (out.eventsAt[event] ??= []).push(at);
        if (keepFinal && kind === 'edgechat' && event === 'done') out.finalData = data;
        const content = parseEvent(kind, event, data, out);
        if (content) {
          text += content;
          out.contentEvents++;
          if (out.ttftMs === null) out.ttftMs = at;
          else out.gaps.push(at - last);
          last = at;
          out.lastTokenMs = at;
        }
      }));
      res.on('end', () => finish(out.done ? null : 'stream ended without its final event'));
      res.on('error', (err) => finish(err.message));
    });
    const timer = setTimeout(() => { req.destroy(); finish(`not finished after ${timeoutMs} ms`); }, timeoutMs);
    req.on('error', (err) => finish(err.message));
    req.end(payload);
  });
}

/**
 * A `data` handler for a text stream of SSE: calls `onEvent(event, data, id)` for each event
 * (`event` defaults to `message`, `id` is null when absent); comments (heartbeats) are skipped.
 */
export function eventReader(onEvent) {
  let buffer = '';
  return (chunk) => {
    buffer += chunk.replace(/\r\n/g, '\n');
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      let id = null;
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('id:')) id = Number(line.slice(3).trim());
      }
      if (data.length) onEvent(event, data.join('\n'), id);
    }
  };
}

/**
 * One chat turn left and resumed, as a reloading browser does: POSTs `spec` (an edgechat chat
 * turn), reads `deltas` deltas, disconnects, then GETs the turn's
 * `/api/v1/conversations/{id}/messages/{message_id}/stream` with `Last-Event-ID: lastEventId`
 * and times the first event (ms from sending the GET to its arrival), then reads on to `done`.
 * Resolves { resumeMs, firstId, error }: an error when the first resumed event is not
 * `lastEventId + 1`, or when the text of the deltas before it and after it differs from the
 * stored answer of `done`, or the answer is not `complete`.
 */
export function resumeOnce(base, spec, { deltas = 3, lastEventId = 3, timeoutMs = 15_000 } = {}) {
  const agent = new http.Agent({ keepAlive: false });
  const headers = { 'content-type': 'application/json', accept: 'text/event-stream', ...spec.headers };
  return new Promise((resolve) => {
    const out = { resumeMs: null, firstId: null, error: null };
    const texts = new Map(); // delta text by event id
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.error = error;
      agent.destroy();
      resolve(out);
    };
    const timer = setTimeout(() => finish(`not finished after ${timeoutMs} ms`), timeoutMs);
    const fail = (res, what) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => finish(`${what}: HTTP ${res.statusCode} ${b.slice(0, 160)}`));
    };
    const resumeFrom = (conversationPath, messageId) => {
      const started = performance.now();
      const req = http.request(targetUrl(base, `${conversationPath}/${messageId}/stream`), {
        agent, headers: { accept: 'text/event-stream', 'last-event-id': String(lastEventId), ...spec.headers },
      }, (res) => {
        if (res.statusCode !== 200) return fail(res, 'resume');
        res.setEncoding('utf8');
        res.on('data', eventReader((event, data, id) => {
          if (out.firstId === null) {
            out.resumeMs = performance.now() - started;
            out.firstId = id;
            if (id !== lastEventId + 1) return finish(`the first resumed event has id ${id}, not ${lastEventId + 1}`);
          }
          if (event === 'delta') texts.set(id, JSON.parse(data).text);
          if (event === 'error') finish(`error event: ${data.slice(0, 160)}`);
          if (event !== 'done') return;
          const m = JSON.parse(data).assistant_message;
          const joined = [...texts.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t).join('');
          finish(m?.status !== 'complete' ? `answer stored as ${m?.status}` : joined !== m.content ? 'the joined deltas differ from the stored answer' : null);
        }));
        res.on('end', () => finish('the resumed stream ended without done'));
      });
      req.on('error', (err) => finish(`resume: ${err.message}`));
      req.end();
    };
    const payload = JSON.stringify(spec.body);
    const post = http.request(targetUrl(base, spec.path), { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(payload) } }, (res) => {
      if (res.statusCode !== 200) return fail(res, 'turn');
      res.setEncoding('utf8');
      let messageId = null;
      let seen = 0;
      res.on('data', eventReader((event, data, id) => {
        if (seen >= deltas) return;
        if (event === 'message') messageId = JSON.parse(data).assistant_message_id;
        if (event !== 'delta') return;
        texts.set(id, JSON.parse(data).text);
        if (++seen < deltas) return;
        post.destroy(); // the reader leaves; the turn goes on without it
        resumeFrom(spec.path, messageId);
      }));
      res.on('error', () => {});
    });
    post.on('error', (err) => { if (!post.destroyed || !texts.size) finish(`turn: ${err.message}`); });
    post.end(payload);
  });
}

/** The token text carried by one SSE event ('' if none); marks `out.done` / `out.error`. */
function parseEvent(kind, event, data, out) {
  if (kind === 'openai') {
    if (data === '[DONE]') { out.done = true; return ''; }
    try {
      const j = JSON.parse(data);
      if (j.error) out.error ??= `error event: ${JSON.stringify(j.error).slice(0, 160)}`;
      const c = j.choices?.[0]?.delta?.content;
      return typeof c === 'string' ? c : '';
    } catch { out.error ??= 'unparseable event'; return ''; }
  }
  if (event === 'delta') {
    try { return JSON.parse(data).text ?? ''; } catch { out.error ??= 'unparseable delta'; return ''; }
  }
  if (event === 'done') out.done = true;
  if (event === 'error') out.error ??= `error event: ${data.slice(0, 160)}`;
  return '';
}

/** Aggregates streams: tokens expected/received/lost, TTFT and gap percentiles, failures. */
function aggregate(results, expectedTokens, extra) {
  const ttft = results.map((r) => r.ttftMs).filter((v) => v !== null);
  const gaps = results.flatMap((r) => r.gaps);
  const failed = results.filter((r) => r.error || !r.done);
  const received = results.reduce((a, r) => a + r.tokens, 0);
  const expected = expectedTokens * results.length;
  return {
    streams: results.length,
    completed: results.length - failed.length,
    expectedTokens: expected,
    receivedTokens: received,
    lostTokens: Math.max(0, expected - received),
    contentEvents: results.reduce((a, r) => a + r.contentEvents, 0),
    ttft: summarize(ttft),
    lastToken: summarize(results.map((r) => r.lastTokenMs).filter((v) => v !== null)),
    gap: summarize(gaps),
    firstError: failed[0]?.error ?? (failed.length ? 'incomplete stream' : null),
    ...extra,
  };
}

/** `count` streams one after another on one keep-alive connection (after one warm-up). */
export async function sequentialStreams(base, makeSpec, { count = 5, expectedTokens }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await streamOnce(agent, base, makeSpec(-1));
    const results = [];
    for (let i = 0; i < count; i++) results.push(await streamOnce(agent, base, makeSpec(i)));
    return aggregate(results, expectedTokens);
  } finally {
    agent.destroy();
  }
}

/** `n` streams at once, each on its own connection, all cut off at `timeoutMs`. */
export async function concurrentStreams(base, makeSpec, { n = 256, expectedTokens, timeoutMs = 30_000 }) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const started = performance.now();
  try {
    const results = await Promise.all(Array.from({ length: n }, (_, i) => streamOnce(agent, base, { ...makeSpec(i), timeoutMs })));
    return aggregate(results, expectedTokens, { seconds: (performance.now() - started) / 1000 });
  } finally {
    agent.destroy();
  }
}
