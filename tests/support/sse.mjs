// A small SSE client for tests: posts a chat turn, records every event and comment with its
// arrival time, and can abort mid-stream like a user pressing stop.
import { BASE } from './client.mjs';

/** Parses complete SSE events out of `buffer`; returns [events, rest]. */
function parse(buffer) {
  const events = [];
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const block of blocks) {
    const ev = { event: 'message', id: null, data: [], comments: [] };
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) ev.comments.push(line.slice(1).trim());
      else {
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') ev.event = value;
        else if (field === 'id') ev.id = Number(value);
        else if (field === 'data') ev.data.push(value);
      }
    }
    events.push(ev);
  }
  return [events, rest];
}

/**
 * POSTs `json` to `path` with `Accept: text/event-stream` (or with `method: 'GET'`, reads a
 * turn's stream) and reads the stream; `headers` are added to the request's.
 * `stopAfterDeltas`: abort the request after that many delta events; `stopWhen(event)`: abort
 * once it returns true for an event.
 * Returns { status, headers, events: [{event, id, data, at}], pings, reads, text }.
 */
export async function streamTurn(path, { token, json, method = 'POST', headers = {}, stopAfterDeltas, stopWhen, base = BASE } = {}) {
  const controller = new AbortController();
  const res = await fetch(base + path, {
    method,
    headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: method === 'GET' ? undefined : JSON.stringify(json ?? {}),
    signal: controller.signal,
  });
  const out = { status: res.status, headers: res.headers, events: [], pings: 0, reads: 0, text: '', aborted: false };
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    out.body = await res.json().catch(() => null);
    return out;
  }
  const decoder = new TextDecoder();
  let buffer = '';
  let deltas = 0;
  try {
    for await (const chunk of res.body) {
      out.reads++;
      buffer += decoder.decode(chunk, { stream: true });
      const [events, rest] = parse(buffer);
      buffer = rest;
      const at = Date.now();
      for (const ev of events) {
        if (ev.data.length === 0) {
          out.pings += ev.comments.filter((c) => c === 'ping').length;
          continue;
        }
        const data = JSON.parse(ev.data.join('\n'));
        out.events.push({ event: ev.event, id: ev.id, data, at });
        if (stopWhen?.(out.events.at(-1))) {
          out.aborted = true;
          controller.abort();
          return out;
        }
        if (ev.event === 'delta') {
          out.text += data.text;
          deltas++;
          if (stopAfterDeltas && deltas >= stopAfterDeltas) {
            out.aborted = true;
            controller.abort();
            return out;
          }
        }
      }
    }
  } catch (err) {
    if (!out.aborted) throw err;
  }
  return out;
}
