// What happens when the wasm traps (a Rust panic, or an allocation the heap cannot grow for):
// the instance is unusable, so every request still waiting on it gets edgechat's JSON 500 and
// one error log line each, and the next request starts a fresh instance. Without this, a
// trapped request hangs until the runtime cancels it with a plain-text 500 and no log line.

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

/**
 * Wraps the wasm fetch handler. `handle(request, env, ctx)` returns a promise of a Response;
 * `reset()` starts a fresh instance; `log(line)` writes a log line. Returns `fetch` for the
 * module's default export and `trapped(errorOrEvent)` for the global error listeners (a trap
 * inside a promise callback reaches only them).
 */
export function guard(handle, reset, log = (line) => console.error(line)) {
  let broken = false;
  /** Requests whose response has not come: key -> [request id, method, started, answer with a 500]. */
  const waiting = new Map();
  const trapped = (reason) => {
    const error = reason?.error ?? reason?.reason ?? reason;
    if (!(error instanceof WebAssembly.RuntimeError)) return false;
    broken = true;
    for (const [id, method, started, fail] of waiting.values()) {
      log(JSON.stringify({
        level: 'error', msg: 'wasm trap', request_id: id, method, status: 500,
        duration_ms: Date.now() - started, error_code: 'internal_error', cause: String(error),
      }));
      fail();
    }
    waiting.clear();
    return true;
  };
  const fetch = (request, env, ctx) => {
    if (broken) {
      broken = false;
      reset();
    }
    const id = requestId(request);
    const key = {};
    return new Promise((resolve, reject) => {
      const settle = (fn) => (value) => {
        if (waiting.delete(key)) fn(value);
      };
      waiting.set(key, [id, request.method, Date.now(), () => resolve(internalError(request, id))]);
      let answer;
      try {
        answer = Promise.resolve(handle(request, env, ctx));
      } catch (error) {
        answer = Promise.reject(error);
      }
      answer.then(settle(resolve), (error) => {
        if (!trapped(error)) settle(reject)(error);
      });
    });
  };
  return { fetch, trapped };
}
