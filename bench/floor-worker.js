// bench/floor-worker.js — the storage floor: for each authenticated scenario, only the D1, KV
// and upstream calls edgechat makes for it, with the same SQL (checked against src/store/ at
// the start of every run) on the same D1 database and KV namespace, in the same workerd
// process (its SQL map is also the reference workers'). No token check, no validation, no JSON built: ids and values come in as headers
// (the user's session and id: `x-floor-session`, `x-floor-user`).
// What edgechat costs above this is its own CPU, the part the budget of 1 ms per request is
// about (on Cloudflare, D1 and KV run elsewhere and are not billed as the worker's CPU).

/** src/store/conversations.rs `path_query!`: the branch from the root to the message `leaf` picks. */
const pathQuery = (leaf, depth) => 'WITH RECURSIVE path (message_id, parent_id, depth) AS ( ' +
  `SELECT message_id, parent_id, 0 FROM messages WHERE ${leaf} UNION ALL ` +
  'SELECT m.message_id, m.parent_id, p.depth + 1 FROM messages m JOIN path p ON m.message_id = p.parent_id ' +
  `WHERE p.depth < ${depth}) SELECT m.message_id, m.conversation_id, m.parent_id, m.role, m.content, m.status, m.model, m.provider, ` +
  'm.prompt_tokens, m.completion_tokens, m.is_usage_estimated, m.time_to_first_token_ms, m.duration_ms, ' +
  'm.created_at, m.steps FROM path JOIN messages m ON m.message_id = path.message_id ORDER BY path.depth DESC';

/** The statements used, by the name of the Rust constant they mirror. */
export const SQL = {
  SELECT_LIVE_SESSION_USER: 'SELECT u.user_id, u.email, u.display_name, u.role, u.plan, u.is_disabled, ' +
    'u.created_at, u.updated_at, u.cache_version ' +
    'FROM sessions s JOIN users u ON u.user_id = s.user_id ' +
    'WHERE s.session_id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND u.is_disabled = 0',
  LIST_FIRST_PAGE: 'SELECT conversation_id, title, model, system_prompt, tools, message_count, created_at, updated_at ' +
    'FROM conversations WHERE user_id = ?1 ORDER BY updated_at DESC, conversation_id DESC LIMIT ?2',
  LIST_AFTER: 'SELECT conversation_id, title, model, system_prompt, tools, message_count, created_at, updated_at ' +
    'FROM conversations WHERE user_id = ?1 AND (updated_at < ?2 OR (updated_at = ?2 AND conversation_id < ?3)) ' +
    'ORDER BY updated_at DESC, conversation_id DESC LIMIT ?4',
  FORGET_OLD_WINDOWS: 'DELETE FROM rate_windows WHERE user_id = ?1 AND window_start < ?2',
  HIT_RATE_WINDOW: 'INSERT INTO rate_windows (user_id, window_start, request_count) VALUES (?1, ?2, 1) ' +
    'ON CONFLICT (user_id, window_start) DO UPDATE SET request_count = request_count + 1 RETURNING request_count',
  RESERVE_TOKENS: 'INSERT INTO daily_tokens (user_id, day, tokens, last_reservation) SELECT ?1, ?2, ?3, ?7 ' +
    'WHERE ?3 <= ?4 AND (SELECT request_count FROM rate_windows WHERE user_id = ?1 AND window_start = ?5) <= ?6 ' +
    'ON CONFLICT (user_id, day) DO UPDATE SET tokens = tokens + ?3, last_reservation = ?7 WHERE tokens + ?3 <= ?4 ' +
    'RETURNING tokens',
  RECORD_RESERVATION: 'INSERT INTO reservations (reservation_id, user_id, day, prompt_tokens, ' +
    'completion_tokens, model, source, api_key_id, created_at, expires_at) ' +
    'SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 ' +
    'WHERE EXISTS (SELECT 1 FROM daily_tokens WHERE user_id = ?2 AND day = ?3 AND last_reservation = ?1) ' +
    'AND (?11 IS NULL OR EXISTS (SELECT 1 FROM active_streams WHERE stream_id = ?11))',
  SETTLE_EXPIRED_USAGE: 'INSERT INTO usage_records (usage_record_id, user_id, api_key_id, source, model, ' +
    'provider, status, prompt_tokens, completion_tokens, is_usage_estimated, is_cache_hit, created_at) ' +
    "SELECT 'use_' || substr(reservation_id, 5), user_id, api_key_id, source, model, NULL, 'unsettled', prompt_tokens, " +
    'completion_tokens, 1, 0, created_at FROM reservations WHERE user_id = ?1 AND expires_at <= ?2',
  FORGET_EXPIRED: 'DELETE FROM reservations WHERE user_id = ?1 AND expires_at <= ?2',
  FORGET_RESERVATION: 'DELETE FROM reservations WHERE reservation_id = ?1',
  RENEW_RESERVATION: 'UPDATE reservations SET expires_at = ?2 WHERE reservation_id = ?1',
  EXPIRE_STREAMS: 'DELETE FROM active_streams WHERE user_id = ?1 AND started_at <= ?2',
  ACQUIRE_STREAM: 'INSERT INTO active_streams (stream_id, user_id, started_at) SELECT ?1, ?2, ?3 ' +
    'WHERE (SELECT COUNT(*) FROM active_streams WHERE user_id = ?2) < ?4 ' +
    'AND (SELECT request_count FROM rate_windows WHERE user_id = ?2 AND window_start = ?5) <= ?6 RETURNING stream_id',
  RENEW_STREAM: 'UPDATE active_streams SET started_at = ?2 WHERE stream_id = ?1',
  RELEASE_STREAM: 'DELETE FROM active_streams WHERE stream_id = ?1',
  SETTLE_TOKENS: 'UPDATE daily_tokens SET tokens = MAX(tokens + ?3, 0) WHERE user_id = ?1 AND day = ?2 ' +
    'AND EXISTS (SELECT 1 FROM reservations WHERE reservation_id = ?4)',
  INSERT_USAGE: 'INSERT INTO usage_records (usage_record_id, user_id, api_key_id, source, model, provider, ' +
    'status, prompt_tokens, completion_tokens, is_usage_estimated, is_cache_hit, created_at) ' +
    'VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)',
  // The chat turn's (used by bench/reference-worker.js and bench/reference-turns.js only).
  LATEST_PATH: pathQuery('message_id = (SELECT message_id FROM messages WHERE conversation_id = ?1 AND user_id = ?2 ' +
    'ORDER BY created_at DESC, message_id DESC LIMIT 1)', '?3'),
  MESSAGE_PATH: pathQuery('message_id = ?1 AND conversation_id = ?2 AND user_id = ?3', '?4'),
  SELECT_CONVERSATION: 'SELECT conversation_id, title, model, system_prompt, tools, message_count, created_at, updated_at ' +
    'FROM conversations WHERE conversation_id = ?1 AND user_id = ?2',
  SEARCH: 'SELECT m.memory_id, m.content, m.created_at FROM memories_fts f ' +
    'JOIN memories m ON m.rowid = f.rowid AND m.user_id = ?1 ' +
    'WHERE memories_fts MATCH ?2 AND f.user_id = ?1 ' +
    'ORDER BY bm25(memories_fts), m.memory_id LIMIT ?3 OFFSET ?4',
  INSERT_USER_MESSAGE: 'INSERT INTO messages ' +
    '(message_id, conversation_id, user_id, parent_id, role, content, status, model, created_at) ' +
    "SELECT ?1, ?2, ?3, ?4, 'user', ?5, 'complete', ?6, ?7 " +
    'WHERE (SELECT message_count FROM conversations WHERE conversation_id = ?2 AND user_id = ?3) + ?9 <= ?8 ' +
    'AND EXISTS (SELECT 1 FROM daily_tokens WHERE user_id = ?3 AND day = ?11 AND last_reservation = ?10) ' +
    'AND (?12 IS NULL OR EXISTS (SELECT 1 FROM active_streams WHERE stream_id = ?12))',
  INSERT_ASSISTANT_PLACEHOLDER: 'INSERT INTO messages ' +
    '(message_id, conversation_id, user_id, parent_id, role, content, status, model, created_at) ' +
    "SELECT ?1, ?2, ?3, ?4, 'assistant', '', 'streaming', ?5, ?6 " +
    'WHERE (SELECT message_count FROM conversations WHERE conversation_id = ?2 AND user_id = ?3) + ?8 <= ?7 ' +
    'AND EXISTS (SELECT 1 FROM daily_tokens WHERE user_id = ?3 AND day = ?10 AND last_reservation = ?9) ' +
    'AND (?11 IS NULL OR EXISTS (SELECT 1 FROM active_streams WHERE stream_id = ?11)) ' +
    'RETURNING message_id',
  COUNT_TURN: 'UPDATE conversations SET message_count = message_count + ?4, updated_at = ?5 ' +
    'WHERE conversation_id = ?1 AND user_id = ?2 AND EXISTS (SELECT 1 FROM messages WHERE message_id = ?3)',
  BUMP_CACHE_VERSION_IF_STORED: 'UPDATE users SET cache_version = cache_version + 1 ' +
    'WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM messages WHERE message_id = ?2)',
  FINALIZE_ASSISTANT: 'UPDATE messages SET content = ?2, status = ?3, model = ?4, provider = ?5, ' +
    'prompt_tokens = ?6, completion_tokens = ?7, is_usage_estimated = ?8, time_to_first_token_ms = ?9, duration_ms = ?10, ' +
    'steps = ?11 WHERE message_id = ?1 ' +
    'RETURNING message_id, conversation_id, parent_id, role, content, status, model, provider, ' +
    'prompt_tokens, completion_tokens, is_usage_estimated, time_to_first_token_ms, duration_ms, created_at, steps',
  TOUCH_CONVERSATION: 'UPDATE conversations SET updated_at = ?2, ' +
    "title = CASE WHEN title = '' AND ?3 IS NOT NULL THEN ?3 ELSE title END WHERE conversation_id = ?1",
  BUMP_CACHE_VERSION: 'UPDATE users SET cache_version = cache_version + 1 WHERE user_id = ?1',
};

const ok = () => new Response('ok');

/**
 * Gateway call: the session check, the admission batch (the minute counted, the worst case
 * reserved and recorded, the user's expired reservations settled), the upstream, then the
 * settlement batch (the reservation replaced by what was used and forgotten, the usage record).
 */
async function completion(request, env, ctx, h, session) {
  const now = Date.now();
  const window = now - (now % 60_000);
  const day = new Date(now - (now % 86_400_000)).toISOString().slice(0, 10);
  const user = await session.first();
  const uid = user.user_id;
  const reservation = `rsv_floor_${now}_${Math.random()}`;
  await env.DB.batch([
    env.DB.prepare(SQL.FORGET_OLD_WINDOWS).bind(uid, window),
    env.DB.prepare(SQL.HIT_RATE_WINDOW).bind(uid, window),
    env.DB.prepare(SQL.RESERVE_TOKENS).bind(uid, day, 1040, 1e15, window, 1e8, reservation),
    env.DB.prepare(SQL.RECORD_RESERVATION).bind(reservation, uid, day, 16, 1024, 'bench-fast', 'gateway', null, now, now + 120_000, null),
    env.DB.prepare(SQL.SETTLE_EXPIRED_USAGE).bind(uid, now),
    env.DB.prepare(SQL.FORGET_EXPIRED).bind(uid, now),
  ]);
  const upstream = await fetch(`${env.UPSTREAM}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: await request.text() });
  const body = await upstream.arrayBuffer();
  ctx.waitUntil(env.DB.batch([
    env.DB.prepare(SQL.SETTLE_TOKENS).bind(uid, day, -1022, reservation),
    env.DB.prepare(SQL.FORGET_RESERVATION).bind(reservation),
    env.DB.prepare(SQL.INSERT_USAGE).bind(`use_floor_${now}_${Math.random()}`, uid, null, 'gateway', 'bench-fast', 'openai', 'complete', 10, 8, 0, 0, now),
  ]));
  return new Response(body, { headers: { 'content-type': 'application/json' } });
}

export default {
  async fetch(request, env, ctx) {
    const h = (name) => request.headers.get(name);
    const url = new URL(request.url);
    const session = env.DB.prepare(SQL.SELECT_LIVE_SESSION_USER).bind(h('x-floor-session'), h('x-floor-user'));
    if (url.pathname === '/floor/conversations-page') { // cursor page: the session check and the page in one batch
      const after = env.DB.prepare(SQL.LIST_AFTER).bind(h('x-floor-user'), Number(h('x-floor-after-key')), h('x-floor-after-id'), 21);
      await env.DB.batch([session, after]);
      return ok();
    }
    if (url.pathname === '/floor/completion') return completion(request, env, ctx, h, session);
    const user = await session.first();
    switch (url.pathname) {
      case '/floor/conversations-hit': // KV hit: the session check, then the cached page
        return new Response(await env.CACHE.get(`v2:conversations:${user.user_id}:${user.cache_version}:first:20`));
      case '/floor/conversations-first': { // first-page miss: KV miss, D1, then the page stored in KV
        const key = `v1:floor:${user.user_id}:${user.cache_version}:first:${h('x-floor-limit')}`;
        await env.CACHE.get(key);
        const { results } = await env.DB.prepare(SQL.LIST_FIRST_PAGE).bind(user.user_id, Number(h('x-floor-limit')) + 1).all();
        // A value of about the size edgechat stores (the page as JSON).
        ctx.waitUntil(env.CACHE.put(key, JSON.stringify(results), { expirationTtl: 300 }));
        return ok();
      }
      default:
        return new Response('unknown floor scenario', { status: 404 });
    }
  },
};
