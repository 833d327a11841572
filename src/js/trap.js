// What happens when the wasm dies: a trap (a Rust panic, or an allocation the heap cannot grow
// for), or a JavaScript exception thrown through wasm frames (the build aborts on panic, so
// Rust never unwinds and its state is left half-changed). The instance is unusable: it is
// replaced at once, so no more Rust code runs on it (no write lands after its request got a
// 500); the trap is logged once; the request that trapped gets edgechat's JSON 500 and its
// log line. Without this, a trapped request hangs until the runtime cancels it with a
// plain-text 500 and nothing is logged.
// Other requests waiting on the instance are released with the JSON 500 too, each in its own
// context. Seen in workerd: one still waiting on I/O (an upstream call) gets it at once; one
// with no I/O left has already been taken as hung, and the runtime ends it with its plain
// 500. A streamed body already under way stops where it was.

/** A request waiting longer than this is taken as cancelled by the runtime and forgotten. */
export const MAX_WAIT_MS = 15 * 60 * 1000;
/** What a waiting request is resolved with when the instance dies under it. */
class Trapped {
  constructor(error) {
    this.error = error;
  }
}

/** The request id to answer with: the incoming one when it is safe to echo (as the worker does), else a new one. */
function requestId(request) {
  const incoming = request.headers.get('x-request-id');
  if (incoming && incoming.length <= 128 && /^[A-Za-z0-9._:-]+$/.test(incoming)) return incoming;
  return crypto.randomUUID().replaceAll('-', '');
}

/** The 500 the worker itself would answer: OpenAI's error shape on `/v1/*`, edgechat's elsewhere. */
export function internalError(request, id) {
  const openai = new URL(request.url).pathname.startsWith('/v1/');
  const error = openai
    ? { message: 'internal error', type: 'server_error', param: null, code: 'internal_error' }
    : { code: 'internal_error', message: 'internal error', request_id: id };
  return new Response(JSON.stringify({ error }), {
    status: 500,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': id },
  });
}

/** True for what leaves the instance unusable: a trap, or an exception that crossed wasm frames. */
export function isFatal(error) {
  if (error instanceof WebAssembly.RuntimeError) return true;
  const stack = typeof error?.stack === 'string' ? error.stack : '';
  return stack.includes('wasm-function[') || stack.includes('wasm://');
}

/**
 * Wraps the wasm fetch handler. `handle(request, env, ctx)` returns a Response or a promise of
 * one; `reset()` starts a fresh instance; `log(line)` writes a log line. Returns `fetch` for the
 * module's default export, `trapped(errorOrEvent)` for the global error listeners (a trap
 * inside a promise callback reaches only them), and `generation()`, the number of instances
 * replaced so far.
 */
export function guard(handle, reset, log = (line) => console.error(line), now = Date.now) {
  let broken = false;
  /** Errors already handled: the same one can arrive twice (a rejection and its event). */
  const seen = new WeakSet();
  /** Requests waiting for the wasm's answer, oldest first: key -> [started, fail]. */
  const waiting = new Map();

  /** Counts fresh instances: objects holding a Rust value of an older one make it again. */
  let instances = 0;
  const renew = () => {
    try {
      reset();
      instances += 1;
      broken = false;
    } catch (error) {
      broken = true; // the next request tries again
      log(JSON.stringify({ level: 'error', msg: 'wasm reset failed', cause: String(error) }));
    }
  };

  const trapped = (reason) => {
    const error = reason?.error ?? reason?.reason ?? reason;
    if (!isFatal(error)) return false;
    if (typeof error === 'object' && error !== null) {
      if (seen.has(error)) return true;
      seen.add(error);
    }
    log(JSON.stringify({ level: 'error', msg: 'wasm trap', cause: String(error), requests_waiting: waiting.size }));
    // Each request answers in its own continuation: a response made here would belong to the
    // request that trapped, and the runtime refuses it to any other.
    for (const [, fail] of waiting.values()) fail(error);
    waiting.clear();
    renew();
    return true;
  };

  const fetch = (request, env, ctx) => {
    if (broken) renew();
    const started = now();
    for (const [key, [since]] of waiting) {
      if (started - since < MAX_WAIT_MS) break;
      waiting.delete(key);
    }
    if (broken) return failed(request, started, new Error('the wasm instance could not be replaced'));
    let answer;
    try {
      answer = handle(request, env, ctx);
    } catch (error) {
      if (trapped(error)) return failed(request, started, error);
      throw error;
    }
    // Answered without waiting (`/health`, most errors): nothing can trap under it any more.
    if (!(answer instanceof Promise)) return answer;
    const key = {};
    return new Promise((resolve, reject) => {
      const settle = (fn) => (value) => {
        if (waiting.delete(key)) fn(value);
      };
      waiting.set(key, [started, (error) => resolve(new Trapped(error))]);
      answer.then(settle(resolve), (error) => {
        if (!trapped(error)) settle(reject)(error);
      });
    }).then((value) => (value instanceof Trapped ? failed(request, started, value.error) : value));
  };

  /** This request's JSON 500 and its log line, made in its own context. */
  const failed = (request, started, error) => {
    const id = requestId(request);
    log(JSON.stringify({
      level: 'error', msg: 'request', request_id: id, method: request.method, status: 500,
      duration_ms: now() - started, error_code: 'internal_error', cause: String(error),
    }));
    return internalError(request, id);
  };

  return { fetch, trapped, generation: () => instances };
}
