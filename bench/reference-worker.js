// bench/reference-worker.js — the JavaScript reference: edgechat's benchmarked requests written
// as a plain JavaScript Worker, bound to the same D1 database and KV namespace, answering under
// /reference/. Each does the same work as edgechat for that request, the way a JavaScript
// Worker would do it, and what every edgechat response carries: a request id (echoed or new),
// the security headers, and one JSON log line (the fields of a successful request's line).
// - `GET /health`: the status and version as JSON.
// - `GET /api/v1/conversations` (KV hit): the HS256 check (WebCrypto) with the same claims,
//   the same session query, the same KV read.
// - `POST /v1/chat/completions`, streamed or not: the token check, the body parsed and checked
//   (the output cap against the route's, n against the plan's, the cost-changing fields), the
//   model routed, the session check, then the same admission batch as edgechat (rate window,
//   the worst case reserved and its reservation recorded, for a stream a stream slot, the
//   user's expired reservations settled: bench/floor-worker.js's statements, which the bench
//   checks against src/store/), a lease renewed every 20 s while the call runs, the client's
//   body sent upstream under the upstream's model name (a stream always asks for usage:
//   `stream_options.include_usage` merged in), the answer relayed as the upstream gave it,
//   then the settlement (the reservation replaced by what was used and forgotten) and usage
//   record (in waitUntil). A streamed answer goes through src/js/relay.js, the same relay
//   edgechat uses: teed, piped to the client (through its usage filter when the client did not
//   ask for usage, natively otherwise), the copy read for usage once it has ended.
// The CPU per request of each is what the same features cost without Rust and wasm.
import { SQL } from './floor-worker.js';
import { Relay } from '../src/js/relay.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let key;
let routes;
const fromB64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const SECURITY_HEADERS = [['x-content-type-options', 'nosniff'], ['referrer-policy', 'no-referrer'], ['x-frame-options', 'DENY'],
  ['content-security-policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"]];
const JSON_TYPE = 'application/json; charset=utf-8';
const MAX_BODY = 1 << 20;
let counter = 0;
let prefix; // random values cannot be made at a Worker's global scope

/** The request id edgechat would use: a safe incoming one, else a new one. */
function requestId(request) {
  const incoming = request.headers.get('x-request-id');
  if (incoming && incoming.length <= 128 && /^[A-Za-z0-9._:-]+$/.test(incoming)) return incoming;
  prefix ??= crypto.randomUUID().replaceAll('-', '').slice(0, 20);
  return prefix + (counter++).toString(16).padStart(12, '0');
}

class Failure {
  constructor(status, code, message, param = null) {
    Object.assign(this, { status, code, message, param });
  }
}
const invalidToken = () => new Failure(401, 'invalid_token', 'invalid token');

/** The access token's claims once its signature and claims check out; throws a Failure. */
async function claims(request, env) {
  const token = (request.headers.get('authorization') ?? '').replace(/^Bearer /, '');
  const [h, p, s] = token.split('.');
  if (!s) throw invalidToken();
  key ??= await crypto.subtle.importKey('raw', encoder.encode(env.JWT_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  if (!(await crypto.subtle.verify('HMAC', key, fromB64url(s), encoder.encode(`${h}.${p}`)))) throw invalidToken();
  const header = JSON.parse(decoder.decode(fromB64url(h)));
  const c = JSON.parse(decoder.decode(fromB64url(p)));
  const now = Date.now() / 1000;
  if (header.alg !== 'HS256' || !(c.exp + 30 >= now) || (c.nbf ?? 0) - 30 > now || c.iss !== 'edgechat' ||
    c.aud !== 'edgechat' || c.typ !== 'access' || !c.sub || !c.sid) throw invalidToken();
  return c;
}

const sessionUser = (env, c) => env.DB.prepare(SQL.SELECT_LIVE_SESSION_USER).bind(c.sid, c.sub);

/** `GET /api/v1/conversations`, answered from the KV cache. */
async function list(request, env, url, seen) {
  const c = await claims(request, env);
  const { results, meta } = await sessionUser(env, c).all();
  seen.rowsRead = meta?.rows_read ?? 0;
  const user = results[0];
  if (!user) throw invalidToken();
  seen.userId = user.user_id;
  const limit = Number(url.searchParams.get('limit') ?? 20);
  const body = await env.CACHE.get(`v2:conversations:${user.user_id}:${user.cache_version}:first:${limit}`);
  if (body === null) throw new Failure(503, 'cache_miss', 'not cached');
  return new Response(body, { headers: { 'content-type': JSON_TYPE, 'x-edgechat-cache': 'hit' } });
}

/** Fields that change a call's price, refused unless the route allows them (none here). */
const GOVERNED_FIELDS = ['audio', 'modalities', 'prediction', 'reasoning_effort', 'service_tier', 'store', 'verbosity', 'web_search_options'];
/** A route's output cap when it sets none, and the plan's choices per request. */
const DEFAULT_MAX_OUTPUT_TOKENS = 1024;
const MAX_N = 1;
const MAX_COMPLETION_BYTES = 4 * 1024 * 1024;
/** The stream slot's and the reservation's leases, and how often a running call renews them. */
const STREAM_LEASE_MS = 60_000;
const RESERVATION_LEASE_MS = 120_000;
const RENEW_EVERY_MS = 20_000;

const invalid = (param, message) => new Failure(400, 'invalid_request_error', message, param);
const randomId = (prefix) => `${prefix}_${crypto.randomUUID().replaceAll('-', '')}`;

/** The request body as a chat completion request, checked as edgechat checks its fields. */
async function completionRequest(request, routes) {
  if (!(request.headers.get('content-type') ?? '').startsWith('application/json')) throw new Failure(415, 'unsupported_media_type', 'send JSON');
  if (Number(request.headers.get('content-length') ?? 0) > MAX_BODY) throw new Failure(413, 'payload_too_large', 'body too large');
  const text = await request.text();
  if (text.length > MAX_BODY) throw new Failure(413, 'payload_too_large', 'body too large');
  let req;
  try { req = JSON.parse(text); } catch { throw new Failure(400, 'invalid_json', 'the body is not JSON'); }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) throw invalid(null, 'the body must be an object');
  if (typeof req.model !== 'string') throw invalid('model', 'model must be a string');
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw invalid('messages', 'messages must be a non-empty array');
  let chars = 0;
  for (const m of req.messages) {
    if (typeof m?.role !== 'string' || typeof m.content !== 'string') throw invalid('messages', 'each message needs a role and a string content');
    chars += m.content.length;
  }
  if (req.stream !== undefined && typeof req.stream !== 'boolean') throw invalid('stream', 'stream must be a boolean');
  const options = req.stream_options;
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) throw invalid('stream_options', 'stream_options must be an object');
  const asked = req.stream ? options?.include_usage : undefined;
  if (asked !== undefined && asked !== null && typeof asked !== 'boolean') throw invalid('stream_options.include_usage', 'include_usage must be a boolean');
  const route = routes.models[req.model];
  if (!route) throw new Failure(404, 'model_not_found', `The model ${req.model} does not exist`, 'model');
  const n = req.n ?? 1;
  if (n > MAX_N) throw invalid('n', `n is ${n}, above the ${MAX_N} choices per request of the plan`);
  for (const field of GOVERNED_FIELDS) {
    if (req[field] !== undefined && req[field] !== null && !(route.allow_fields ?? []).includes(field)) throw invalid(field, `${field} is not enabled for model ${req.model}`);
  }
  const routeCap = route.max_output_tokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const cap = req.max_completion_tokens ?? req.max_tokens;
  if (cap > routeCap) throw invalid('max_tokens', `max_tokens is too large: ${cap}`);
  const prompt = Math.ceil(chars / 4) + 4 * req.messages.length;
  return { req, route, includeUsage: asked === true, prompt, completion: (cap ?? routeCap) * n };
}

/** A finished stream's text and usage (estimated from the text when the upstream sent none). */
function streamSummary(bytes, tail, promptEstimate) {
  let text = '';
  let usage = null;
  const read = (b, textToo) => {
    for (const line of decoder.decode(b).split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      let chunk;
      try { chunk = JSON.parse(line.slice(6)); } catch { continue; }
      if (textToo) text += chunk.choices?.[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
  };
  read(bytes, true);
  // A copy cut at its cap: the usage event is in the stream's last bytes.
  if (tail) read(tail, false);
  return { text, usage: usage ?? { prompt_tokens: promptEstimate, completion_tokens: Math.ceil(text.length / 4) }, estimated: !usage };
}

/** The usage record's status of a stream that ended as `state` (src/js/relay.js). */
const streamStatus = (state, text) => ({ end: 'complete', gone: 'cancelled' })[state] ?? (text ? 'cut' : 'error');

/** `POST /v1/chat/completions`: admission, the upstream call, settlement and usage record. */
async function completion(request, env, ctx, seen) {
  const c = await claims(request, env);
  routes ??= JSON.parse(env.MODEL_ROUTES);
  const { req, route, includeUsage, prompt, completion } = await completionRequest(request, routes);
  const estimate = prompt + completion;
  const now = Date.now();
  const window = now - (now % 60_000);
  const day = new Date(now - (now % 86_400_000)).toISOString().slice(0, 10);
  const user = await sessionUser(env, c).first();
  if (!user) throw invalidToken();
  seen.userId = user.user_id;
  const reservation = randomId('rsv');
  // A stream also takes one of the plan's concurrent-stream slots (a lease not renewed for a minute is free again).
  const streamId = req.stream ? randomId('str') : null;
  const admission = [
    env.DB.prepare(SQL.FORGET_OLD_WINDOWS).bind(c.sub, window),
    env.DB.prepare(SQL.HIT_RATE_WINDOW).bind(c.sub, window),
    env.DB.prepare(SQL.RESERVE_TOKENS).bind(c.sub, day, estimate, 1e15, window, 1e8, reservation),
  ];
  if (streamId) {
    admission.push(env.DB.prepare(SQL.EXPIRE_STREAMS).bind(c.sub, now - STREAM_LEASE_MS));
    admission.push(env.DB.prepare(SQL.ACQUIRE_STREAM).bind(streamId, c.sub, now, 100_000, window, 1e8));
  }
  admission.push(
    env.DB.prepare(SQL.RECORD_RESERVATION).bind(reservation, c.sub, day, prompt, completion, req.model, 'gateway', null, now, now + RESERVATION_LEASE_MS, streamId),
    env.DB.prepare(SQL.SETTLE_EXPIRED_USAGE).bind(c.sub, now),
    env.DB.prepare(SQL.FORGET_EXPIRED).bind(c.sub, now),
  );
  const [, hit, reserved, , slot] = await env.DB.batch(admission);
  if (!hit.results[0] || !reserved.results[0] || (streamId && !slot.results[0])) throw new Failure(429, 'rate_limited', 'over the plan');
  // The call keeps its reservation and its stream slot while it runs.
  const renewals = setInterval(() => {
    const at = Date.now();
    ctx.waitUntil(env.DB.batch([
      env.DB.prepare(SQL.RENEW_RESERVATION).bind(reservation, at + RESERVATION_LEASE_MS),
      ...(streamId ? [env.DB.prepare(SQL.RENEW_STREAM).bind(streamId, at)] : []),
    ]));
  }, RENEW_EVERY_MS);
  const record = (usage, status, estimated = false) => {
    clearInterval(renewals);
    const used = usage ? usage.prompt_tokens + usage.completion_tokens : 0;
    return env.DB.batch([
      env.DB.prepare(SQL.SETTLE_TOKENS).bind(user.user_id, day, used - estimate, reservation),
      env.DB.prepare(SQL.FORGET_RESERVATION).bind(reservation),
      ...(streamId ? [env.DB.prepare(SQL.RELEASE_STREAM).bind(streamId)] : []),
      env.DB.prepare(SQL.INSERT_USAGE).bind(randomId('use'), user.user_id, null, 'gateway', req.model, 'openai', status,
        usage?.prompt_tokens ?? 0, usage?.completion_tokens ?? 0, estimated || !usage ? 1 : 0, 0, Date.now()),
    ]);
  };
  // The client's body with the upstream's model name; a stream always asks for usage.
  const upstreamBody = { ...req, model: route.upstream };
  if (req.stream && !includeUsage) upstreamBody.stream_options = { ...req.stream_options, include_usage: true };
  const abort = new AbortController();
  const upstream = await fetch(`${env.OPENAI_BASE_URL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(upstreamBody), signal: abort.signal,
  });
  if (!upstream.ok) {
    ctx.waitUntil(record(null, 'error'));
    throw new Failure(502, 'upstream_error', 'the model failed');
  }
  if (req.stream) {
    const tail = (code) => encoder.encode(`data: ${JSON.stringify({ error: { message: 'the model stopped', type: 'server_error', param: null, code } })}\n\n`);
    // The client that did not ask for usage gets the stream without it.
    const relay = new Relay(upstream.body, 30_000, 15_000, MAX_COMPLETION_BYTES, tail('upstream_timeout'), tail('upstream_error'), request.signal, !includeUsage);
    ctx.waitUntil(relay.ended.then((state) => {
      if (state !== 'end') abort.abort();
      const { text, usage, estimated } = streamSummary(relay.bytes(), relay.truncated ? relay.tail() : null, prompt);
      return record(usage, streamStatus(state, text), estimated);
    }));
    return new Response(relay.readable, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-edgechat-cache': 'bypass' } });
  }
  const answer = await upstream.text();
  ctx.waitUntil(record(JSON.parse(answer).usage, 'complete'));
  return new Response(answer, { headers: { 'content-type': JSON_TYPE, 'x-edgechat-cache': 'bypass' } });
}

/** The error body edgechat gives: OpenAI's shape under /v1, edgechat's elsewhere. */
function failed(f, openai, id) {
  const error = openai
    ? { message: f.message, type: f.status >= 500 ? 'server_error' : 'invalid_request_error', param: f.param, code: f.code }
    : { code: f.code, message: f.message, request_id: id };
  return new Response(JSON.stringify({ error }), { status: f.status, headers: { 'content-type': JSON_TYPE } });
}

export default {
  async fetch(request, env, ctx) {
    const started = Date.now();
    const id = requestId(request);
    const seen = { userId: undefined, rowsRead: 0 };
    const url = new URL(request.url);
    const path = url.pathname.slice('/reference'.length);
    let route = path;
    let response;
    try {
      if (path === '/health') response = new Response(JSON.stringify({ status: 'ok', version: env.VERSION }), { headers: { 'content-type': JSON_TYPE } });
      else if (path === '/api/v1/conversations') response = await list(request, env, url, seen);
      else if (path === '/v1/chat/completions' && request.method === 'POST') response = await completion(request, env, ctx, seen);
      else { route = 'unmatched'; throw new Failure(404, 'not_found', 'no such route'); }
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      response = failed(err, path.startsWith('/v1/'), id);
    }
    response.headers.set('x-request-id', id);
    for (const [name, value] of SECURITY_HEADERS) response.headers.set(name, value);
    console.log(JSON.stringify({
      level: 'info', msg: 'request', request_id: id, method: request.method, route,
      status: response.status, duration_ms: Date.now() - started, user_id: seen.userId, d1_rows_read: seen.rowsRead, d1_rows_written: 0,
    }));
    return response;
  },
};
