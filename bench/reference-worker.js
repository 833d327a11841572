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
// - `POST /api/v1/conversations/{id}/messages` with `Accept: text/event-stream` (the chat
//   turn): the token check, the body checked, the session, conversation and branch read in
//   one batch, the user's memories searched for the message's words, the context (memories,
//   branch, the message), then one admission batch (rate window, reservation, stream slot,
//   expired reservations settled) that also stores the user message and the assistant
//   placeholder (`streaming`); then the turn goes to the user's Durable Object
//   (bench/reference-turns.js), whose first reader is the response.
// - `GET /api/v1/conversations/{id}/messages/{message_id}/stream` (resume): the token check,
//   the session, conversation and the branch to the message read in one batch, then a new
//   reader from the user's Durable Object after `Last-Event-ID` (or `?after=`).
// The CPU per request of each is what the same features cost without Rust and wasm.
import { SQL } from './floor-worker.js';
import { Relay } from '../src/js/relay.js';
import { messageView } from './reference-turns.js';
export { RefTurns } from './reference-turns.js';

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

const MAX_MESSAGES = 1000;
const MAX_CONTENT_BYTES = 32 * 1024;
const MEMORY_TOP_K = 5;
const STOP_WORDS = new Set(['about', 'also', 'and', 'any', 'are', 'been', 'but', 'can', 'could', 'did', 'does', 'for', 'from', 'had', 'has',
  'have', 'how', 'into', 'its', 'just', 'not', 'our', 'out', 'please', 'should', 'some', 'than', 'that', 'the',
  'their', 'them', 'then', 'there', 'they', 'this', 'was', 'were', 'what', 'when', 'where', 'which', 'who', 'why']);

/** The FTS5 query matching any word of `text` (3 letters or more, not a stop word), or null. */
function ftsAnyQuery(text) {
  const seen = [];
  for (const term of text.split(/[^\p{L}\p{N}\p{M}]+/u)) {
    const lower = term.toLowerCase();
    if ([...term].length < 3 || STOP_WORDS.has(lower) || seen.includes(lower)) continue;
    seen.push(lower);
    if (seen.length === 32) break;
  }
  return seen.length ? seen.map((t) => `"${t.replaceAll('"', '""')}"`).join(' OR ') : null;
}

const userView = (m) => ({
  message_id: m.message_id, conversation_id: m.conversation_id, parent_id: m.parent_id, role: 'user', content: m.content, status: 'complete',
  model: m.model, provider: null, usage: null, time_to_first_token_ms: null, duration_ms: null, created_at: new Date(m.created_at).toISOString(), steps: [],
});

/** `POST /api/v1/conversations/{id}/messages`, streamed: admission, then the user's Durable Object. */
async function postMessage(request, env, conversationId, id, seen) {
  const c = await claims(request, env);
  routes ??= JSON.parse(env.MODEL_ROUTES);
  if (!(request.headers.get('content-type') ?? '').startsWith('application/json')) throw new Failure(415, 'unsupported_media_type', 'send JSON');
  const text = await request.text();
  if (text.length > MAX_BODY) throw new Failure(413, 'payload_too_large', 'body too large');
  let req;
  try { req = JSON.parse(text); } catch { throw new Failure(400, 'invalid_json', 'the body is not JSON'); }
  const [session, found, branch] = await env.DB.batch([
    sessionUser(env, c),
    env.DB.prepare(SQL.SELECT_CONVERSATION).bind(conversationId, c.sub),
    env.DB.prepare(SQL.LATEST_PATH).bind(conversationId, c.sub, MAX_MESSAGES),
  ]);
  const user = session.results[0];
  if (!user) throw invalidToken();
  seen.userId = user.user_id;
  if (typeof req?.content !== 'string' || !req.content.trim() || encoder.encode(req.content).length > MAX_CONTENT_BYTES) {
    throw new Failure(422, 'validation_failed', 'content must not be empty');
  }
  const conversation = found.results[0];
  if (!conversation) throw new Failure(404, 'not_found', 'conversation not found');
  const model = req.model ?? conversation.model;
  const route = routes.models[model];
  if (!route) throw new Failure(422, 'validation_failed', `unknown model ${model}`);
  const path = branch.results;
  const fts = ftsAnyQuery(req.content);
  const memories = fts ? (await env.DB.prepare(SQL.SEARCH).bind(user.user_id, fts, MEMORY_TOP_K, 0).all()).results : [];
  // The context: what the user's memories say, the branch, the new message (the bench's turns
  // offer no tools, have no system prompt and fit the window).
  const messages = [];
  if (memories.length) messages.push({ role: 'system', content: `Things to remember about the user:\n${memories.map((m) => `- ${m.content}`).join('\n')}` });
  for (const m of path) if (m.content) messages.push({ role: m.role, content: m.content });
  messages.push({ role: 'user', content: req.content });
  const prompt = messages.reduce((n, m) => n + Math.ceil(m.content.length / 4) + 4, 0);
  const completion = route.max_output_tokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const now = Date.now();
  const window = now - (now % 60_000);
  const day = new Date(now - (now % 86_400_000)).toISOString().slice(0, 10);
  const reservation = randomId('rsv');
  const streamId = randomId('str');
  const userMessage = { message_id: randomId('msg'), conversation_id: conversationId, parent_id: path.at(-1)?.message_id ?? null, content: req.content, model, created_at: now };
  const assistantId = randomId('msg');
  const startedAt = Date.now();
  const results = await env.DB.batch([
    env.DB.prepare(SQL.FORGET_OLD_WINDOWS).bind(c.sub, window),
    env.DB.prepare(SQL.HIT_RATE_WINDOW).bind(c.sub, window),
    env.DB.prepare(SQL.RESERVE_TOKENS).bind(c.sub, day, prompt + completion, 1e15, window, 1e8, reservation),
    env.DB.prepare(SQL.EXPIRE_STREAMS).bind(c.sub, now - STREAM_LEASE_MS),
    env.DB.prepare(SQL.ACQUIRE_STREAM).bind(streamId, c.sub, now, 100_000, window, 1e8),
    env.DB.prepare(SQL.RECORD_RESERVATION).bind(reservation, c.sub, day, prompt, completion, model, 'chat', null, now, now + RESERVATION_LEASE_MS, streamId),
    env.DB.prepare(SQL.SETTLE_EXPIRED_USAGE).bind(c.sub, now),
    env.DB.prepare(SQL.FORGET_EXPIRED).bind(c.sub, now),
    env.DB.prepare(SQL.INSERT_USER_MESSAGE).bind(userMessage.message_id, conversationId, c.sub, userMessage.parent_id, req.content, model, now, MAX_MESSAGES, 2, reservation, day, streamId),
    env.DB.prepare(SQL.INSERT_ASSISTANT_PLACEHOLDER).bind(assistantId, conversationId, c.sub, userMessage.message_id, model, Math.max(startedAt, now + 1), MAX_MESSAGES, 2, reservation, day, streamId),
    env.DB.prepare(SQL.COUNT_TURN).bind(conversationId, c.sub, assistantId, 2, Math.max(startedAt, now + 1)),
    env.DB.prepare(SQL.BUMP_CACHE_VERSION_IF_STORED).bind(c.sub, assistantId),
  ]);
  const [, hit, reserved, , slot] = results;
  if (!hit.results[0] || !reserved.results[0] || !slot.results[0]) throw new Failure(429, 'rate_limited', 'over the plan');
  if (!results[9].results[0]) throw new Failure(409, 'message_limit_reached', `at most ${MAX_MESSAGES} messages per conversation`);
  const spec = {
    request_id: id, user_id: c.sub, conversation_id: conversationId, assistant_message_id: assistantId, model,
    prompt_estimate: prompt, started_at: startedAt,
    admission: { day, reservation_id: reservation, stream_id: streamId, reserved: prompt + completion },
    first_event: JSON.stringify({ user_message: userView(userMessage), assistant_message_id: assistantId }),
    upstream_body: { model: route.upstream, messages, stream: true, stream_options: { include_usage: true }, max_tokens: completion },
  };
  const answer = await env.TURNS.get(env.TURNS.idFromName(c.sub)).fetch('https://turns.internal/start', { method: 'POST', body: JSON.stringify(spec) });
  if (answer.status !== 200) throw new Failure(500, 'internal_error', 'the turn did not start');
  return eventStream(answer.body);
}

const eventStream = (body) => new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } });

/** `GET .../messages/{message_id}/stream`: the turn's events after `Last-Event-ID` (or `?after=`), then live. */
async function resume(request, env, url, conversationId, messageId, seen) {
  const c = await claims(request, env);
  const [session, found, branch] = await env.DB.batch([
    sessionUser(env, c),
    env.DB.prepare(SQL.SELECT_CONVERSATION).bind(conversationId, c.sub),
    env.DB.prepare(SQL.MESSAGE_PATH).bind(messageId, conversationId, c.sub, MAX_MESSAGES),
  ]);
  const user = session.results[0];
  if (!user) throw invalidToken();
  seen.userId = user.user_id;
  if (!found.results[0]) throw new Failure(404, 'not_found', 'conversation not found');
  const answer = branch.results.at(-1);
  if (!answer) throw new Failure(404, 'not_found', 'message not found');
  if (answer.role !== 'assistant') throw new Failure(400, 'not_an_answer', 'this message is a question: only an answer has a turn');
  const raw = request.headers.get('last-event-id') ?? url.searchParams.get('after') ?? '0';
  if (!/^\d{1,15}$/.test(raw.trim())) throw new Failure(400, 'invalid_event_id', 'Last-Event-ID must be a non-negative event id, e.g. 3');
  const after = Number(raw.trim());
  const stub = env.TURNS.get(env.TURNS.idFromName(c.sub));
  const kept = await stub.fetch(`https://turns.internal/stream?message_id=${encodeURIComponent(answer.message_id)}&after=${after}`);
  if (kept.status === 200) return eventStream(kept.body);
  const { error } = await kept.json();
  if (error.code !== 'turn_not_kept') throw new Failure(kept.status, error.code, error.message);
  // Events no longer kept: the final event made from the stored answer.
  const view = messageView(answer);
  const [name, data] = answer.status === 'complete' || answer.status === 'cancelled'
    ? ['done', { assistant_message: view }]
    : ['error', { error: { code: 'turn_interrupted', message: 'the answer did not finish' }, assistant_message: view }];
  return eventStream(`id: ${after + 1}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The error body edgechat gives: OpenAI's shape under /v1, edgechat's elsewhere. */
function failed(f, openai, id) {
  const error = openai
    ? { message: f.message, type: f.status >= 500 ? 'server_error' : 'invalid_request_error', param: f.param, code: f.code }
    : { code: f.code, message: f.message, request_id: id };
  return new Response(JSON.stringify({ error }), { status: f.status, headers: { 'content-type': JSON_TYPE } });
}

const TURN_ROUTE = /^\/api\/v1\/conversations\/([^/]+)\/messages$/;
const RESUME_ROUTE = /^\/api\/v1\/conversations\/([^/]+)\/messages\/([^/]+)\/stream$/;

export default {
  async fetch(request, env, ctx) {
    const started = Date.now();
    const id = requestId(request);
    const seen = { userId: undefined, rowsRead: 0 };
    const url = new URL(request.url);
    const path = url.pathname.slice('/reference'.length);
    let route = path;
    let response;
    let match;
    try {
      if (path === '/health') response = new Response(JSON.stringify({ status: 'ok', version: env.VERSION }), { headers: { 'content-type': JSON_TYPE } });
      else if (path === '/api/v1/conversations') response = await list(request, env, url, seen);
      else if (path === '/v1/chat/completions' && request.method === 'POST') response = await completion(request, env, ctx, seen);
      else if ((match = path.match(TURN_ROUTE)) && request.method === 'POST') {
        route = '/api/v1/conversations/{conversation_id}/messages';
        response = await postMessage(request, env, match[1], id, seen);
      } else if ((match = path.match(RESUME_ROUTE)) && request.method === 'GET') {
        route = '/api/v1/conversations/{conversation_id}/messages/{message_id}/stream';
        response = await resume(request, env, url, match[1], match[2], seen);
      }
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
