// bench/reference-worker.js — the JavaScript reference for the authenticated scenario: the same
// `GET /api/v1/conversations` KV-hit request written as a plain JavaScript Worker, bound to the
// same D1 database and KV namespace as edgechat. It does the same work: HS256 check (WebCrypto)
// with the same claims, the same session query, the same KV read, and what every edgechat
// response carries: a request id (echoed or new), the security headers, and one JSON log line
// with the same fields. Its CPU per request is the floor for that request in this workerd,
// database and cache simulation included.
const SESSION_USER = 'SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, ' +
  'u.created_at, u.updated_at, u.cache_version ' +
  'FROM sessions s JOIN users u ON u.user_id = s.user_id ' +
  'WHERE s.session_id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND u.is_disabled = 0';

const encoder = new TextEncoder();
let key;
const fromB64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const unauthorized = () => Response.json({ error: { code: 'invalid_token', message: 'invalid token' } }, { status: 401 });
const SECURITY_HEADERS = [['x-content-type-options', 'nosniff'], ['referrer-policy', 'no-referrer'], ['x-frame-options', 'DENY'],
  ['content-security-policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"]];
let counter = 0;
let prefix; // random values cannot be made at a Worker's global scope

/** The request id edgechat would use: a safe incoming one, else a new one. */
function requestId(request) {
  const incoming = request.headers.get('x-request-id');
  if (incoming && incoming.length <= 128 && /^[A-Za-z0-9._:-]+$/.test(incoming)) return incoming;
  prefix ??= crypto.randomUUID().replaceAll('-', '').slice(0, 20);
  return prefix + (counter++).toString(16).padStart(12, '0');
}

/** The request itself: the token check, the session query and the cached page. */
async function list(request, env, url, seen) {
  const token = (request.headers.get('authorization') ?? '').replace(/^Bearer /, '');
  const [h, p, s] = token.split('.');
  if (!s) return unauthorized();
  key ??= await crypto.subtle.importKey('raw', encoder.encode(env.JWT_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  if (!(await crypto.subtle.verify('HMAC', key, fromB64url(s), encoder.encode(`${h}.${p}`)))) return unauthorized();
  const header = JSON.parse(new TextDecoder().decode(fromB64url(h)));
  const claims = JSON.parse(new TextDecoder().decode(fromB64url(p)));
  const now = Date.now() / 1000;
  if (header.alg !== 'HS256' || !(claims.exp + 30 >= now) || (claims.nbf ?? 0) - 30 > now || claims.iss !== 'edgechat' ||
    claims.aud !== 'edgechat' || claims.typ !== 'access' || !claims.sub || !claims.sid) return unauthorized();
  const { results, meta } = await env.DB.prepare(SESSION_USER).bind(claims.sid, claims.sub).all();
  seen.rowsRead = meta?.rows_read ?? 0;
  const user = results[0];
  if (!user) return unauthorized();
  seen.userId = user.user_id;
  const limit = Number(url.searchParams.get('limit') ?? 20);
  const body = await env.CACHE.get(`v1:conversations:${user.user_id}:${user.cache_version}:first:${limit}`);
  if (body === null) return Response.json({ error: { code: 'cache_miss' } }, { status: 503 });
  return new Response(body, { headers: { 'content-type': 'application/json', 'x-edgechat-cache': 'hit' } });
}

export default {
  async fetch(request, env) {
    const started = Date.now();
    const id = requestId(request);
    const seen = { userId: undefined, rowsRead: 0 };
    const response = await list(request, env, new URL(request.url), seen);
    response.headers.set('x-request-id', id);
    for (const [name, value] of SECURITY_HEADERS) response.headers.set(name, value);
    console.log(JSON.stringify({
      level: 'info', msg: 'request', request_id: id, method: request.method, route: '/api/v1/conversations',
      status: response.status, duration_ms: Date.now() - started, user_id: seen.userId, d1_rows_read: seen.rowsRead, d1_rows_written: 0,
    }));
    return response;
  },
};
