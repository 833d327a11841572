// sim/testkit.mjs — helpers for sim tests and tools: start/stop a simulator, POST JSON, read SSE with arrival times, poll.

import { createSimulator } from './server.mjs';

/** Start a simulator on 127.0.0.1, port 0. Returns { sim, url, close }. */
export async function startSim(options = {}) {
  const sim = createSimulator({ intervalMs: 0, ...options });
  const { url } = await sim.listen(0, '127.0.0.1');
  return { sim, url, close: () => sim.close() };
}

/** POST a JSON body (a string is sent verbatim). */
export function postJson(url, body, { headers = {}, signal } = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
}

/** Parse one SSE block ("event: x\ndata: y") into { event, data }. */
export function parseSseBlock(block) {
  let event = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return { event, data: data.join('\n') };
}

/**
 * Read an SSE response body to its end (or error). `onEvent(ev, events)` may return true to stop reading.
 * Returns { reads: [{ at, size }], events: [{ event, data, at }], error, rest } with `at` = performance.now().
 */
export async function readSse(response, onEvent) {
  const reads = [];
  const events = [];
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  let buf = '';
  let error = null;
  try {
    outer: for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const at = performance.now();
      reads.push({ at, size: value.length });
      buf += decoder.decode(value, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const ev = { ...parseSseBlock(buf.slice(0, i)), at };
        buf = buf.slice(i + 2);
        events.push(ev);
        if (onEvent?.(ev, events)) break outer;
      }
    }
  } catch (err) {
    error = err;
  }
  return { reads, events, error, rest: buf, reader };
}

/** JSON.parse or undefined. */
export function tryJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Poll `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function waitFor(fn, timeoutMs = 2000, stepMs = 10) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
