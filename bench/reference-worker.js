// bench/reference-worker.js — the JavaScript reference for the authenticated scenario: the same
// `GET /api/v1/conversations` KV-hit request written as a plain JavaScript Worker, bound to the
// same D1 database and KV namespace as edgechat. It does the same work: HS256 check (WebCrypto)
// with the same claims, the same session query, the same KV read. Its CPU per request is the
// floor for that request in this workerd, database and cache simulation included.
const SESSION_USER = 'SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, ' +
  'u.created_at, u.updated_at, u.cache_version ' +
  'FROM sessions s JOIN users u ON u.user_id = s.user_id ' +
  'WHERE s.session_id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND u.is_disabled = 0';

const encoder = new TextEncoder();
let key;
const fromB64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const unauthorized = () => Response.json({ error: { code: 'invalid_token', message: 'invalid token' } }, { status: 401 });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
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
    const user = await env.DB.prepare(SESSION_USER).bind(claims.sid, claims.sub).first();
    if (!user) return unauthorized();
    const limit = Number(url.searchParams.get('limit') ?? 20);
    const body = await env.CACHE.get(`v1:conversations:${user.user_id}:${user.cache_version}:first:${limit}`);
    if (body === null) return Response.json({ error: { code: 'cache_miss' } }, { status: 503 });
    return new Response(body, { headers: { 'content-type': 'application/json', 'x-edgechat-cache': 'hit' } });
  },
};
