// sim/engine.mjs — provider-neutral request lifecycle: body, auth, options, faults, recording, SSE pacing and abort detection.

import { resolveOptions, OptionError } from './options.mjs';
import { generateTokens, echoTokens, seedText, promptTokens, lastUserText } from './text.mjs';
import { summaryAnswer } from './summary.mjs';
import { titleAnswer } from './title.mjs';

const MAX_BODY = 32 * 1024 * 1024;

const STATUS_TEXT = {
  400: 'Bad request (simulated).',
  401: 'Unauthorized (simulated).',
  403: 'Forbidden (simulated).',
  404: 'Not found (simulated).',
  408: 'Request timeout (simulated).',
  413: 'Request too large (simulated).',
  429: 'Rate limit reached (simulated). Please try again later.',
  500: 'The server had an error while processing your request (simulated).',
  502: 'Bad gateway (simulated).',
  503: 'The service is temporarily unavailable (simulated).',
  529: 'Overloaded (simulated).',
};

/**
 * Serve one request to a provider endpoint. `provider` is the OpenAI or Anthropic module
 * (see openai.mjs for the interface); `sim` holds config, the record array and fail counters.
 */
export async function handle(sim, provider, req, res, path) {
  const ctx = track(sim, provider, req, res, path);
  const raw = await readBody(req).catch(() => undefined);
  if (raw === undefined) return; // client went away while sending the body
  if (raw === null) return fail(ctx, 413, 'Request body too large.');
  if (sim.apiKey && !provider.authorized(req.headers, sim.apiKey)) return fail(ctx, 401, provider.authMessage);

  const body = parseObject(raw);
  if (!body) return fail(ctx, 400, 'We could not parse the JSON body of your request.');
  ctx.body = ctx.rec.body = body;
  ctx.rec.model = typeof body.model === 'string' ? body.model : null;
  ctx.rec.stream = body.stream === true;

  const invalid = provider.validate(body);
  if (invalid) return fail(ctx, 400, invalid);
  try {
    const { base, options } = resolveOptions(body.model, req.headers['x-sim-options']);
    ctx.base = base;
    ctx.opts = ctx.rec.options = options;
  } catch (err) {
    if (err instanceof OptionError) return fail(ctx, 400, err.message);
    throw err;
  }
  return respond(ctx);
}

async function respond(ctx) {
  const { opts, rec } = ctx;
  if (opts.delay) await ctx.sleep(opts.delay);
  if (ctx.closed) return;

  const status = faultStatus(ctx);
  if (status) {
    const headers = opts.retry_after !== undefined ? { 'retry-after': String(opts.retry_after) } : {};
    return fail(ctx, status, STATUS_TEXT[status] ?? `Simulated error ${status}.`, headers);
  }
  if (opts.hang) return hang(ctx);
  // A provider whose answer is one JSON object of its own (embeddings) makes no text.
  if (ctx.provider.answer) return opts.garbage ? sendGarbage(ctx) : sendJson(ctx, 200, ctx.provider.answer(ctx));

  const texts = ctx.provider.texts(ctx.body);
  ctx.seed = seedText(ctx.base, texts);
  ctx.promptTokens = promptTokens(texts);
  const plan = makePlan(ctx);

  if (!rec.stream) {
    if (opts.cut !== undefined) return cutConnection(ctx);
    rec.tokens_sent = plan.tokens.length;
    rec.chunks_sent = 1;
    if (opts.garbage) return sendGarbage(ctx);
    const answer = ctx.provider.complete(ctx, plan);
    if (opts.pad_kib) answer.sim_padding = 'x'.repeat(opts.pad_kib * 1024);
    return sendJson(ctx, 200, answer);
  }
  return pump(ctx, plan, ctx.provider.frames(ctx, plan));
}

/** Decide the answer: provider-specific plan (e.g. a tool call) or text tokens, then apply the max_tokens cap. */
function makePlan(ctx) {
  const plan = ctx.provider.plan?.(ctx) ?? { tokens: textTokens(ctx) };
  const cap = ctx.provider.maxTokens(ctx.body);
  plan.truncated = cap !== undefined && plan.tokens.length > cap;
  if (plan.truncated) plan.tokens = plan.tokens.slice(0, cap);
  return plan;
}

/** The generated (or echoed) answer text as tokens; a summary request's summary. */
function textTokens(ctx) {
  const summary = summaryAnswer(ctx.provider.texts(ctx.body));
  if (summary !== null) return echoTokens(summary);
  const title = titleAnswer(ctx.provider.texts(ctx.body));
  if (title !== null) return echoTokens(title);
  if (ctx.opts.echo) return echoTokens(lastUserText(ctx.body.messages));
  return generateTokens(ctx.seed, ctx.opts.tokens ?? ctx.sim.tokens);
}

/** The status to fail with (0 = succeed), honouring status= and fail_times=. */
function faultStatus(ctx) {
  const { status, fail_times: times } = ctx.opts;
  if (status === undefined && times === undefined) return 0;
  const code = status ?? 500;
  if (code < 400) return 0;
  if (times === undefined) return code;
  // The last user text, or an embeddings request's input.
  const text = ctx.body.messages ? lastUserText(ctx.body.messages) : JSON.stringify(ctx.body.input ?? null);
  const key = `${ctx.body.model}\n${ctx.req.headers['x-sim-options'] ?? ''}\n${text}`;
  const seen = (ctx.sim.failCounts.get(key) ?? 0) + 1;
  ctx.sim.failCounts.set(key, seen);
  return seen <= times ? code : 0;
}

// ---------------------------------------------------------------- streaming

/** Write the stream: preamble at once, tokens paced by `interval`, then the epilogue; honours cut= and malformed=. */
async function pump(ctx, plan, frames) {
  const { res, opts, rec } = ctx;
  const interval = opts.interval ?? ctx.sim.intervalMs;
  startStream(ctx);
  for (const frame of frames.pre) if (!(await emit(ctx, frame))) return;
  const t0 = performance.now();
  const { tokens } = plan;
  for (let k = 0; k < tokens.length; k++) {
    if (k === opts.cut) return cutConnection(ctx);
    if (k > 0 && interval > 0) await ctx.sleep(t0 + k * interval - performance.now());
    if (ctx.closed) return;
    // A token is one SSE event, or several when it also opens a new content block or tool call.
    const out = frames.token(tokens[k], k);
    let alive = true;
    for (const frame of typeof out === 'string' ? [out] : out) if (!(alive = await emit(ctx, frame))) break;
    rec.tokens_sent = k + 1;
    if (!alive) return;
  }
  if (opts.cut !== undefined) return cutConnection(ctx);
  for (const frame of frames.post) if (!(await emit(ctx, frame))) return;
  res.end();
}

/** Write one SSE event (malformed if it is the malformed=N'th); resolves false once the client is gone. */
async function emit(ctx, frame) {
  if (ctx.closed) return false;
  const n = ++ctx.rec.chunks_sent;
  if (!ctx.res.write(n === ctx.opts.malformed ? malform(frame) : frame)) await ctx.drain();
  return !ctx.closed;
}

/** Truncate the data payload of an SSE event to half its length, leaving invalid JSON (or "[DO"). */
export function malform(frame) {
  const start = frame.lastIndexOf('data: ') + 6;
  const payload = frame.slice(start, frame.length - 2);
  return frame.slice(0, start) + payload.slice(0, Math.max(1, payload.length >> 1)) + '\n\n';
}

function startStream(ctx) {
  ctx.rec.status = 200;
  ctx.res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    ...ctx.provider.headers(ctx),
  });
  ctx.res.flushHeaders();
  ctx.firstByte();
}

/** hang: headers, then nothing until the client (or the server shutdown) closes the connection. */
async function hang(ctx) {
  if (ctx.rec.stream) startStream(ctx);
  else {
    ctx.rec.status = 200;
    ctx.res.writeHead(200, { 'content-type': 'application/json', ...ctx.provider.headers(ctx) });
    ctx.res.flushHeaders();
    ctx.firstByte();
  }
  await ctx.sleep(Infinity);
}

/**
 * Drop the connection mid-response: flush what was already written, then close the socket (no
 * HTTP terminator). The close comes CUT_GRACE_MS after the last bytes: a client may drop bytes
 * that reach it together with the close (Node 24's fetch does), and a cut must lose none.
 */
const CUT_GRACE_MS = 20;
function cutConnection(ctx) {
  ctx.cut = true;
  const socket = ctx.res.socket;
  if (!socket || socket.destroyed) return;
  if (ctx.rec.chunks_sent === 0) return void socket.destroy();
  setTimeout(() => {
    if (socket.destroyed) return;
    socket.once('finish', () => socket.destroy());
    socket.end();
  }, CUT_GRACE_MS);
}

// ---------------------------------------------------------------- plumbing

/** Create the record and the per-request context; watch for the response closing (finished or aborted). */
function track(sim, provider, req, res, path) {
  const h = req.headers;
  const rec = sim.record({
    path,
    model: null,
    options: null,
    body: null,
    has_auth: h.authorization !== undefined || h['x-api-key'] !== undefined,
    stream: false,
    status: null,
    received_at: Date.now(),
    first_byte_at: null,
    finished_at: null,
    chunks_sent: 0,
    tokens_sent: 0,
    completed: false,
    aborted: false,
  });
  const ctx = {
    sim, provider, req, res, rec,
    opts: {}, body: null, base: '',
    requestId: `req_sim${rec.seq.toString().padStart(8, '0')}`,
    created: Math.floor(rec.received_at / 1000),
    closed: false, cut: false, timer: null, wake: null,
  };
  ctx.firstByte = () => { rec.first_byte_at ??= Date.now(); };
  ctx.sleep = (ms) => new Promise((resolve) => {
    if (ctx.closed) return resolve();
    ctx.wake = resolve;
    if (ms !== Infinity) ctx.timer = setTimeout(resolve, Math.max(0, ms));
  });
  ctx.drain = () => new Promise((resolve) => {
    if (ctx.closed) return resolve();
    ctx.wake = resolve;
    res.once('drain', resolve);
  });
  res.on('finish', () => {
    rec.completed = true;
    rec.finished_at = Date.now();
  });
  res.on('close', () => {
    ctx.closed = true;
    rec.finished_at ??= Date.now();
    if (!res.writableFinished && !ctx.cut) rec.aborted = true;
    clearTimeout(ctx.timer);
    ctx.wake?.();
  });
  return ctx;
}

/** Read the body as UTF-8; resolves null when over the size limit, rejects if the client goes away. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      done = true;
      resolve(size > MAX_BODY ? null : Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
    req.on('close', () => { if (!done) reject(new Error('request closed')); });
  });
}

function parseObject(raw) {
  try {
    const value = JSON.parse(raw);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Send a JSON response with the provider's headers (request id). */
export function sendJson(ctx, status, value, headers = {}) {
  const text = JSON.stringify(value);
  ctx.rec.status = status;
  ctx.res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...ctx.provider.headers(ctx),
    ...headers,
  });
  ctx.firstByte();
  ctx.res.end(text);
}

/** garbage: a 200 whose body is not the provider's JSON (an HTML page, as a broken proxy gives). */
function sendGarbage(ctx) {
  const text = '<html><body>Service temporarily unavailable (simulated).</body></html>';
  ctx.rec.status = 200;
  ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...ctx.provider.headers(ctx) });
  ctx.firstByte();
  ctx.res.end(text);
}

/** Send an error in the provider's error shape. */
function fail(ctx, status, message, headers) {
  return sendJson(ctx, status, ctx.provider.errorBody(status, message, ctx), headers);
}
