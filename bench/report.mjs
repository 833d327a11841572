// bench/report.mjs — turns the results object into the Markdown report (figures, baselines, ratios, budgets) and writes it with the JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ms = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '—' : `${v.toFixed(d)} ms`);
const num = (v, d = 0) => (v === null || v === undefined ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
/** A CPU difference with its sign, e.g. "+0.050 ms"; "—" when unknown. */
const signed = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? '—' : `${v >= 0 ? '+' : '−'}${ms(Math.abs(v), d)}`);
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const mib = (kib) => (kib ? `${(kib / 1024).toFixed(0)} MiB` : '—');
const ratio = (a, b) => (a > 0 && b > 0 ? `×${(a / b).toFixed(2)}` : '—');
const met = (ok) => (ok === null || ok === undefined ? 'n/a' : ok ? '**met**' : '**not met**');
const known = (...vs) => vs.every((v) => typeof v === 'number' && !Number.isNaN(v));
/**
 * Whether `a <= b`, or null when either is unknown. CPU figures are sums of clock ticks
 * divided by request counts, so a value shown as 1.000 can be 1 plus a rounding error: that
 * much is not counted against it.
 */
export function within(a, b) {
  return known(a, b) ? a <= b + 1e-9 : null;
}
/** `a <= b` as met / not met, or n/a when either side is unknown. */
const atMost = (a, b) => met(within(a, b));

/** "p50 − floor p50": the added latency of a target over its floor (ms); null when unknown. */
export function added(target, floor, key) {
  const a = target?.latency?.[key];
  const b = floor?.latency?.[key];
  return a === null || a === undefined || b === null || b === undefined ? null : a - b;
}

/** A's CPU minus B's in each alternating round where both were measured, smallest first; null without rounds. */
function roundDifferences(a, b) {
  const ra = a?.cpuRoundsMs, rb = b?.cpuRoundsMs;
  if (!Array.isArray(ra) || !Array.isArray(rb) || ra.length !== rb.length) return null;
  const d = ra.map((v, i) => (v === null || rb[i] === null ? null : v - rb[i])).filter((v) => v !== null).sort((x, y) => x - y);
  return d.length ? d : null;
}

/**
 * A's CPU above B's: the median of their differences round by round (both measured in the
 * same alternating round, so drift between rounds cancels), else the difference of medians.
 */
export function cpuAbove(a, b) {
  const d = roundDifferences(a, b);
  if (d) return d[Math.floor(d.length / 2)];
  return known(a?.cpuPerRequestMs, b?.cpuPerRequestMs) ? a.cpuPerRequestMs - b.cpuPerRequestMs : null;
}

/**
 * "per round: +0.067 ms, from −0.100 to +0.200 ms": the median difference and the range of
 * the rounds' differences, so a reader can tell a gap from the noise.
 */
export function perRound(a, b, digits = 3) {
  return `per round: ${signed(cpuAbove(a, b), digits)}${spread(a, b, digits)}`;
}

/** ", from −0.100 to +0.200 ms": the range of the rounds' differences ("" without rounds). */
function spread(a, b, digits = 3) {
  const d = roundDifferences(a, b);
  return d && d.length > 1 ? `, from ${signed(d[0], digits)} to ${signed(d[d.length - 1], digits)}` : '';
}

/** Scenarios measured against the storage floor (bench/floor-worker.js): [key, name]. */
const FLOORED = [
  ['conversationsHit', '`GET /api/v1/conversations` with KV cache hit'],
  ['conversationsMiss', '`GET /api/v1/conversations` without cache (cursor page, D1)'],
  ['conversationsFirstMiss', '`GET /api/v1/conversations` first-page miss (KV miss + D1 + KV put)'],
  ['completions', '`POST /v1/chat/completions` (8 tokens, not streamed)'],
];

/** Builds the rows of "edgechat against its baselines": [scenario, figure, edgechat, baseline name, baseline value, ratio]. */
function headlineRows(r) {
  const s = r.scenarios;
  const rows = [];
  const push = (scenario, figure, mine, baseName, base, fmt = ms) => rows.push([scenario, figure, fmt(mine), baseName, fmt(base), ratio(mine, base)]);
  const h = s.health ?? {};
  if (h.edgechat && h.js) {
    push('`GET /health`', 'latency p50, 1 connection', h.edgechat.latency.p50, 'JS worker', h.js.latency.p50);
    push('`GET /health`', 'latency p99, 1 connection', h.edgechat.latency.p99, 'JS worker', h.js.latency.p99);
    push('`GET /health`', 'best req/s with p99 < 10 ms, no errors', h.edgechat.rate?.best?.rps, 'JS worker', h.js.rate?.best?.rps, num);
    push('`GET /health`', 'workerd CPU per request', h.edgechat.cpuPerRequestMs, 'JS worker', h.js.cpuPerRequestMs, (v) => ms(v, 3));
  }
  if (h.edgechat && h.reference?.latency) {
    const base = 'same response in plain JS';
    push('`GET /health`', 'latency p50, 1 connection', h.edgechat.latency.p50, base, h.reference.latency.p50);
    push('`GET /health`', 'best req/s with p99 < 10 ms, no errors', h.edgechat.rate?.best?.rps, base, h.reference.rate?.best?.rps, num);
    push('`GET /health`', 'workerd CPU per request', h.edgechat.cpuPerRequestMs, base, h.reference.cpuPerRequestMs, (v) => ms(v, 3));
  }
  const ref = s.conversationsHit?.reference;
  if (s.conversationsHit?.edgechat && ref?.latency) {
    const c = s.conversationsHit.edgechat;
    const scen = '`GET /api/v1/conversations` with KV cache hit';
    const base = 'same request in plain JS';
    push(scen, 'latency p50, 1 connection', c.latency.p50, base, ref.latency.p50);
    push(scen, 'latency p99, 1 connection', c.latency.p99, base, ref.latency.p99);
    push(scen, 'best req/s with p99 < 10 ms, no errors', c.rate?.best?.rps, base, ref.rate?.best?.rps, num);
    push(scen, 'workerd CPU per request', c.cpuPerRequestMs, base, ref.cpuPerRequestMs, (v) => ms(v, 3));
  }
  for (const [key, name] of [['conversationsHit', 'with KV cache hit'], ['conversationsMiss', 'without cache (cursor page, D1)'], ['conversationsFirstMiss', 'first-page miss (KV miss + D1 + KV put)']]) {
    const c = s[key]?.edgechat;
    if (!c || !h.js) continue;
    const scen = `\`GET /api/v1/conversations\` ${name}`;
    push(scen, 'latency p50, 1 connection', c.latency.p50, 'JS worker /health', h.js.latency.p50);
    push(scen, 'latency p99, 1 connection', c.latency.p99, 'JS worker /health', h.js.latency.p99);
    if (c.rate) push(scen, 'best req/s with p99 < 10 ms, no errors', c.rate.best?.rps, 'JS worker /health', h.js.rate?.best?.rps, num);
    push(scen, 'workerd CPU per request', c.cpuPerRequestMs, 'JS worker /health', h.js.cpuPerRequestMs, (v) => ms(v, 3));
  }
  for (const [key, scen] of FLOORED) {
    const t = s[key]?.edgechat;
    const floor = s[key]?.floor;
    if (t?.cpuPerRequestMs !== undefined && floor?.cpuPerRequestMs !== undefined) {
      push(scen, 'workerd CPU per request', t.cpuPerRequestMs, 'storage floor (same D1, KV and upstream calls only)', floor.cpuPerRequestMs, (v) => ms(v, 3));
    }
  }
  const c = s.completions ?? {};
  const scen = '`POST /v1/chat/completions` (8 tokens, not streamed)';
  if (c.edgechat?.notImplemented || c.edgechat?.error) {
    rows.push([scen, 'all figures', c.edgechat.notImplemented ? 'not yet implemented (404)' : `failed: ${c.edgechat.error}`, 'JS worker', '', '']);
  } else if (c.edgechat && c.js) {
    push(scen, 'added latency p50 (vs simulator direct)', added(c.edgechat, c.sim, 'p50'), 'JS worker', added(c.js, c.sim, 'p50'));
    push(scen, 'added latency p99 (vs simulator direct)', added(c.edgechat, c.sim, 'p99'), 'JS worker', added(c.js, c.sim, 'p99'));
    push(scen, 'best req/s with p99 < 10 ms, no errors', c.edgechat.rate?.best?.rps, 'JS worker', c.js.rate?.best?.rps, num);
    push(scen, 'workerd CPU per request', c.edgechat.cpuPerRequestMs, 'JS worker', c.js.cpuPerRequestMs, (v) => ms(v, 3));
  }
  if (c.edgechat?.latency && c.reference?.latency) {
    const base = 'same call in plain JS';
    push(scen, 'added latency p50 (vs simulator direct)', added(c.edgechat, c.sim, 'p50'), base, added(c.reference, c.sim, 'p50'));
    push(scen, 'workerd CPU per request', c.edgechat.cpuPerRequestMs, base, c.reference.cpuPerRequestMs, (v) => ms(v, 3));
  }
  const st = s.completionsStream ?? {};
  const sscen = '`POST /v1/chat/completions` streamed (64 chunks, 20 ms apart)';
  if (st.edgechat?.notImplemented || st.edgechat?.error) {
    rows.push([sscen, 'all figures', st.edgechat.notImplemented ? 'not yet implemented (404)' : `failed: ${st.edgechat.error}`, 'JS worker', '', '']);
  } else if (st.edgechat && st.js) streamRows(push, sscen, st.edgechat, st.js, st.sim);
  if (st.edgechat?.pairedExtraChunkMs != null && st.reference?.pairedExtraChunkMs != null) {
    push(sscen, 'workerd CPU per extra chunk, alternating rounds', st.edgechat.pairedExtraChunkMs, 'same relay in plain JS', st.reference.pairedExtraChunkMs, (v) => ms(v, 4));
  }
  const turn = s.chatTurn?.edgechat;
  const tscen = 'chat turn `POST /api/v1/conversations/{id}/messages` SSE (64 chunks, 20 ms apart)';
  if (turn && st.js) streamRows(push, tscen, turn, st.js, st.sim);
  const tref = s.chatTurn?.reference;
  if (turn?.many && tref?.many) {
    const base = 'same turn in plain JS';
    push(tscen, 'inter-chunk gap p99, 256 concurrent streams', turn.many.gap?.p99, base, tref.many.gap?.p99);
    push(tscen, 'time to last token p99, 256 concurrent streams', turn.many.lastToken?.p99, base, tref.many.lastToken?.p99);
    push(tscen, 'workerd CPU per chunk (256 streams, raw)', turn.many.cpuPerChunkMs, base, tref.many.cpuPerChunkMs, (v) => ms(v, 4));
  }
  if (turn?.pairedExtraChunkMs != null && tref?.pairedExtraChunkMs != null) {
    push(tscen, 'workerd CPU per extra chunk, alternating rounds', turn.pairedExtraChunkMs, 'same turn in plain JS', tref.pairedExtraChunkMs, (v) => ms(v, 4));
  }
  const re = r.resume ?? {};
  if (re.edgechat?.firstEvent?.count && re.reference?.firstEvent?.count) {
    const scen = 'reconnect: `GET .../messages/{id}/stream` with `Last-Event-ID: 3`';
    push(scen, 'time to the first resumed event p50, 1 connection', re.edgechat.firstEvent.p50, 'same turn in plain JS', re.reference.firstEvent.p50);
    push(scen, 'time to the first resumed event p95, 1 connection', re.edgechat.firstEvent.p95, 'same turn in plain JS', re.reference.firstEvent.p95);
  }
  const k = r.agent?.kinds;
  if (k?.plain?.turns && k.oneTool?.turns) {
    const scen = 'chat turn with one tool step (`add_task`), SSE, 8 tokens at once';
    const base = 'plain chat turn (no tools), same run';
    push(scen, 'time to `done` p50, 1 connection', k.oneTool.done.p50, base, k.plain.done.p50);
    push(scen, 'time to `done` p95, 1 connection', k.oneTool.done.p95, base, k.plain.done.p95);
  }
  return rows;
}

function streamRows(push, scen, mine, js, sim) {
  const addedTtft = (t) => (t?.one?.ttft?.p50 ?? null) - (sim?.one?.ttft?.p50 ?? 0);
  push(scen, 'added time to first token p50 (vs simulator direct)', addedTtft(mine), 'JS worker', addedTtft(js));
  push(scen, 'inter-chunk gap p99, 1 connection', mine.one?.gap?.p99, 'JS worker', js.one?.gap?.p99);
  push(scen, 'time to first token p99, 256 concurrent streams', mine.many?.ttft?.p99, 'JS worker', js.many?.ttft?.p99);
  push(scen, 'time to last token p99, 256 concurrent streams (floor ~1,260 ms)', mine.many?.lastToken?.p99, 'JS worker', js.many?.lastToken?.p99);
  push(scen, 'inter-chunk gap p99, 256 concurrent streams (see note)', mine.many?.gap?.p99, 'JS worker', js.many?.gap?.p99);
  push(scen, 'tokens lost, 256 concurrent streams (of 16,384)', mine.many?.lostTokens, 'JS worker', js.many?.lostTokens, num);
  push(scen, 'workerd CPU per chunk (256 streams, raw)', mine.many?.cpuPerChunkMs, 'JS worker', js.many?.cpuPerChunkMs, (v) => ms(v, 4));
  push(scen, 'workerd CPU per extra chunk (64- vs 8-chunk streams)', mine.cpuPerExtraChunkMs, 'JS worker', js.cpuPerExtraChunkMs, (v) => ms(v, 4));
}

/**
 * `a / b <= limit` as met / not met, or n/a when either side is unknown: the design's CPU
 * budgets are ratios to the same work in plain JavaScript measured in the same run.
 */
export function ratioWithin(a, b, limit) {
  return known(a, b) && b > 0 ? within(a / b, limit) : null;
}

function budgetRows(r) {
  const s = r.scenarios;
  const rows = [['wasm <= 350 KB gzip (`gzip -9` of build/index_bg.wasm)', `${kb(r.wasm.gzipBytes)} gzip (${r.wasm.gzipBytes.toLocaleString('en-US')} bytes; ${kb(r.wasm.rawBytes)} raw)`, met(r.wasm.gzipBytes <= 350 * 1024)]];
  // CPU against the same work written in plain JavaScript (bench/reference-worker.js), same
  // workerd, same D1 and KV: [name, scenario, limit].
  const against = [
    ['`GET /health`', s.health, 1.2],
    ['`GET /api/v1/conversations`, KV cache hit', s.conversationsHit, 1.3],
    ['`POST /v1/chat/completions`, not streamed (token check, admission, upstream call, usage record)', s.completions, 1.3],
  ];
  for (const [name, t, limit] of against) {
    const [e, ref] = [t?.edgechat?.cpuPerRequestMs, t?.reference?.cpuPerRequestMs];
    const measured = known(e, ref) ? `${ms(e, 3)} vs ${ms(ref, 3)}: ${ratio(e, ref)} (${perRound(t.edgechat, t.reference)})` : 'not measured';
    rows.push([`${name}: CPU per request <= ${limit}x the same request in plain JS`, measured, met(ratioWithin(e, ref, limit))]);
  }
  const st = s.completionsStream ?? {};
  const [pe, pr] = [st.edgechat?.pairedExtraChunkMs, st.reference?.pairedExtraChunkMs];
  rows.push(['streamed `/v1/chat/completions` (pass-through): CPU per extra chunk <= 1.2x the same relay in plain JS',
    known(pe, pr) ? `${ms(pe, 4)} vs ${ms(pr, 4)}: ${ratio(pe, pr)}` : 'not measured', met(ratioWithin(pe, pr, 1.2))]);
  const [te, tr] = [s.chatTurn?.edgechat?.pairedExtraChunkMs, s.chatTurn?.reference?.pairedExtraChunkMs];
  rows.push(['chat turn: CPU per extra chunk <= 1.2x the same turn in plain JS (same Durable Object design)',
    known(te, tr) ? `${ms(te, 4)} vs ${ms(tr, 4)}: ${ratio(te, tr)}` : 'not measured', met(ratioWithin(te, tr, 1.2))]);
  // On Cloudflare D1 and KV run elsewhere: the worker's own CPU is what it costs above the
  // same storage calls made by a worker that does nothing else.
  for (const [key, name] of FLOORED) {
    const t = s[key]?.edgechat;
    const floor = s[key]?.floor?.cpuPerRequestMs;
    if (!known(t?.cpuPerRequestMs, floor)) continue;
    const own = cpuAbove(t, s[key].floor);
    rows.push([`<= 1 ms own CPU per non-streaming request (above the storage floor): ${name}`, `${ms(own, 3)} (median of per-round differences${spread(t, s[key].floor)}; medians ${ms(t.cpuPerRequestMs, 3)} and floor ${ms(floor, 3)})`, atMost(own, 1)]);
  }
  // The bare JavaScript pass-through worker is the platform floor for streaming.
  for (const [name, t] of [['streamed `/v1/chat/completions`', st.edgechat], ['chat turn', s.chatTurn?.edgechat]]) {
    if (!t?.many || !st.js?.many) continue;
    const [gap, jsGap] = [t.many.gap?.p99, st.js.many.gap?.p99];
    rows.push([`${name}, 256 concurrent streams: inter-chunk gap p99 <= 3x the pass-through worker's, no token lost`,
      `${ms(gap)} vs ${ms(jsGap)}: ${ratio(gap, jsGap)}; ${num(t.many.lostTokens)} tokens lost, ${t.many.completed} of ${t.many.streams} streams completed`,
      met(t.many.lostTokens === 0 && t.many.completed === t.many.streams ? ratioWithin(gap, jsGap, 3) : false)]);
  }
  const re = r.resume ?? {};
  if (re.edgechat) {
    const [e, ref] = [re.edgechat.firstEvent?.p50, re.reference?.firstEvent?.p50];
    rows.push(['chat turn: time to the first resumed event after a reconnect, p50 (reported, no budget)',
      `${ms(e)}${known(e, ref) ? ` vs ${ms(ref)} in plain JS: ${ratio(e, ref)}` : ''}; ${re.edgechat.turns - re.edgechat.errors} of ${re.edgechat.turns} resumes complete`, 'reported']);
  }
  return rows;
}

/** One line per scenario and target that had errors or incomplete streams. */
function problemLines(r) {
  const lines = [];
  for (const [key, targets] of Object.entries(r.scenarios)) {
    for (const [id, t] of Object.entries(targets)) {
      const who = `${key}, ${r.labels[id] ?? id}`;
      if (t.error) lines.push(`${who}: ${t.error}`);
      if (t.latency?.errors) lines.push(`${who}: ${t.latency.errors} of ${t.latency.n} one-connection requests failed; first: ${t.latency.firstError}`);
      for (const step of t.rate?.steps ?? []) if (step.errors) lines.push(`${who}: ${step.errors} errors at concurrency ${step.concurrency}; first: ${step.firstError}`);
      for (const part of ['one', 'many']) {
        const x = t[part];
        if (x && x.completed < x.streams) lines.push(`${who}: ${x.streams - x.completed} of ${x.streams} streams incomplete (${part === 'one' ? 'one connection' : 'concurrent'}); first: ${x.firstError}`);
      }
    }
  }
  for (const [id, t] of Object.entries(r.resume ?? {})) {
    if (t.errors) lines.push(`reconnects, ${r.labels[id] ?? id}: ${t.errors} of ${t.turns} resumes failed; first: ${t.firstError}`);
  }
  for (const [id, t] of Object.entries(r.agent?.kinds ?? {})) {
    if (t.errors) lines.push(`agent turns, ${t.label}: ${t.errors} of ${t.errors + t.turns} turns failed; first: ${t.firstError}`);
  }
  return lines.map((l) => l.replace(/\|/g, '/').replace(/\s+/g, ' '));
}

/** The reconnect section: per target, the time to the first resumed event and the checks. */
function renderResumeSection(r) {
  const out = ['## Reconnects: the first resumed event', ''];
  const re = r.resume;
  if (!re) return [...out, 'Not measured in this run.', ''].join('\n');
  out.push(`A chat turn (8 tokens 20 ms apart, a fresh conversation) is read until its third \`delta\` (event id 4), the connection is dropped, and \`GET /api/v1/conversations/{id}/messages/{message_id}/stream\` is sent with \`Last-Event-ID: 3\` on a new connection: the time is from sending that request to the arrival of its first event, which must be id 4 (kept by the turn's Durable Object); the resumed stream is then read to \`done\`, and the text of the deltas before and after the reconnect must equal the stored answer, \`complete\` (else the resume counts as failed). ${r.method.resumeTurns} turns per target after ${r.method.resumeWarmup} unmeasured ones, edgechat and the same turn in plain JS alternating, one at a time.`, '');
  const rows = Object.entries(re).map(([id, t]) => [id === 'reference' ? 'the same turn in plain JS (bench/reference-worker.js and its Durable Object)' : r.labels[id] ?? id,
    `${t.turns - t.errors} / ${t.turns}`, ms(t.firstEvent?.p50), ms(t.firstEvent?.p95), ms(t.firstEvent?.max)]);
  out.push(table(['target', 'resumes complete', 'first resumed event p50', 'p95', 'max'], rows), '');
  return out.join('\n');
}

/**
 * The derived figures: a kind's time to `done` (p50) above the plain turn's, as a difference
 * and a ratio, and the median of the round-by-round differences; per extra tool step, the
 * looping turn's p50 above the one-tool turn's over the extra steps, and the median gap
 * between its consecutive `tool_result` events (one whole step: settle, admit, model call,
 * tool). Nulls where a figure is missing.
 */
export function agentFigures(a) {
  const k = a?.kinds ?? {};
  const p50 = (id) => k[id]?.done?.p50 ?? null;
  const over = (id, base = 'plain') => {
    const [x, y] = [p50(id), p50(base)];
    return x === null || y === null ? null : { ms: x - y, ratio: y > 0 ? x / y : null, pairedMs: base === 'plain' ? k[id]?.pairedAbovePlain?.p50 ?? null : null };
  };
  const extraSteps = (k.toolLoop?.toolCalls ?? 0) - (k.oneTool?.toolCalls ?? 0);
  const loopAbove = p50('toolLoop') !== null && p50('oneTool') !== null && extraSteps > 0 ? (p50('toolLoop') - p50('oneTool')) / extraSteps : null;
  return {
    offered: over('offered'),
    oneTool: over('oneTool'),
    oneToolOverOffered: over('oneTool', 'offered'),
    toolLoop: over('toolLoop'),
    perExtraStepMs: loopAbove,
    stepGapP50Ms: k.toolLoop?.stepGap?.p50 ?? null,
  };
}

/**
 * The agent turns' section (also printed by `node bench/run.mjs --only agent`): each kind's
 * event times, then the added latency of tool steps over a plain turn.
 */
export function renderAgentSection(a) {
  const out = ['## Agent turns: the added latency of a tool step', ''];
  if (!a?.kinds) {
    out.push('Not measured in this run.', '');
    return out.join('\n');
  }
  const k = a.kinds;
  const f = agentFigures(a);
  out.push(`Chat turns (\`POST /api/v1/conversations/{id}/messages\`, \`Accept: text/event-stream\`) to edgechat in bare workerd with Miniflare's local D1 (the migrations applied) and KV, against the simulator, one keep-alive connection: the same D1 (SQLite) as under \`wrangler dev\`, without the proxy that wrangler dev puts in front of the worker (about 6 ms on every request, see \`GET /health\` above), which would be counted in every turn. Every model call is \`${a.upstream}\` (8 tokens sent at once), so the times are the worker's own work and the loopback round trips, not simulated generation. The kinds of turn run interleaved: ${a.rounds} rounds (after ${a.warmupRounds} unmeasured ones), each running every kind once in a shuffled order (seed ${a.seed}), each turn in a fresh conversation and followed by a ${a.pauseMs} ms pause, so that drift and a turn's trailing work hit every kind alike. A tool turn's content carries the simulator's line \`/tool add_task {"title":"bench"}\`; the model calls the tool, the worker runs it (one D1 insert) and calls the model again, which answers \`Done: ...\`. The looping turn's model (\`tool_loop\`) calls the tool again after each result until the worker's last allowed call (\`MAX_TOOL_STEPS\` = ${a.maxToolSteps}, sent with tool choice \`none\`) answers in text. Every turn is checked (its \`tool_result\` events, the steps stored in the assistant message of \`done\`, every call ok); a turn that fails a check is counted as an error, not timed. Times are from sending the request to the event's arrival.`, '');
  const row = (kind) => {
    const t = k[kind.id] ?? kind;
    return [t.label, String(t.modelCalls), String(t.toolCalls), `${t.turns}${t.errors ? ` (${t.errors} failed)` : ''}`,
      t.toolCall ? ms(t.toolCall.p50) : '—', t.toolResult ? `${ms(t.toolResult.p50)} / ${ms(t.toolResult.p95)}` : '—',
      t.lastToolResult ? ms(t.lastToolResult.p50) : '—', `${ms(t.done?.p50)} / ${ms(t.done?.p95)}`,
      t.cpuPerTurnMs === null || t.cpuPerTurnMs === undefined ? '—' : ms(t.cpuPerTurnMs, 1)];
  };
  const ids = ['plain', 'offered', 'oneTool', 'toolLoop'].filter((id) => k[id]);
  out.push(table(['turn', 'model calls', 'tool steps', 'turns timed', 'first `tool_call` p50', 'first `tool_result` p50 / p95', 'last `tool_result` p50', '`done` p50 / p95', 'workerd CPU per turn (mean)'], ids.map((id) => row({ id, ...k[id] }))), '');
  const d = (x) => (x ? `${signed(x.ms, 2)} (×${x.ratio?.toFixed(2) ?? '—'})${x.pairedMs !== null && x.pairedMs !== undefined ? `; median of the rounds' differences ${signed(x.pairedMs, 2)}` : ''}` : '—');
  out.push(table(['added latency (time to `done`, p50)', 'measured'], [
    ['one tool step over a plain turn (no tools offered)', d(f.oneTool)],
    ['one tool step over a plain turn offering the same tool', d(f.oneToolOverOffered)],
    ['offering `add_task` without calling it, over no tools', d(f.offered)],
    [`${k.toolLoop?.toolCalls ?? '—'} tool steps over a plain turn (no tools offered)`, d(f.toolLoop)],
    [`per extra tool step: (${k.toolLoop?.toolCalls ?? '—'}-step p50 − one-step p50) ÷ ${(k.toolLoop?.toolCalls ?? 0) - (k.oneTool?.toolCalls ?? 0)}`, ms(f.perExtraStepMs)],
    ['per extra tool step: gap between consecutive `tool_result` events of the looping turn, p50', ms(f.stepGapP50Ms)],
  ]), '');
  out.push('What one tool step adds to a turn, in order: the `tool_call` event; the tool run on D1 (`add_task`: one capped insert); the `tool_result` event; a D1 batch that writes the finished model call\'s usage record and settles its admission; the next call\'s admission (one D1 batch that counts the plan\'s limits and reserves its tokens and stream slot); a second upstream request and streamed answer; and a larger final write (the steps JSON). CPU per turn is the mean over the timed turns of workerd\'s CPU from the request to the end of the pause after it (clock ticks of 10 ms, so only the mean is shown; it includes Miniflare\'s D1 work, which on Cloudflare runs elsewhere).', '');
  return out.join('\n');
}

const table = (head, rows) => [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

function targetRows(r) {
  const rows = [];
  const names = r.labels;
  const scen = [
    ['health', '`GET /health`', 'js'],
    ['conversationsHit', 'conversations, KV hit', 'js-health'],
    ['conversationsMiss', 'conversations, cursor page (D1)', 'js-health'],
    ['conversationsFirstMiss', 'conversations, first-page miss', 'js-health'],
    ['completions', '`/v1/chat/completions`, 8 tokens, not streamed', 'sim'],
  ];
  for (const [key, name, floorId] of scen) {
    for (const [id, t] of Object.entries(r.scenarios[key] ?? {})) {
      if (t.notImplemented || t.error) { rows.push([name, names[id] ?? id, t.notImplemented ? 'not yet implemented (404)' : `failed: ${t.error}`, '', '', '', '', ms(t.cpuPerRequestMs, 3), '']); continue; }
      const floor = floorId === 'js-health' ? r.scenarios.health?.js : r.scenarios[key][floorId];
      const addedCell = (k) => (id === floorId || !floor || (key === 'health' && id === 'sim') ? '—' : ms(added(t, floor, k)));
      rows.push([name, names[id] ?? id, ms(t.latency.p50), ms(t.latency.p99), addedCell('p50'), addedCell('p99'),
        t.rate ? (t.rate.best ? `${num(t.rate.best.rps)} (c=${t.rate.best.concurrency})` : `none (c=1: p99 ${ms(t.rate.steps[0]?.p99)}, ${t.rate.steps[0]?.errors ?? 0} errors)`) : '—',
        t.cpuPerRequestMs === null || t.cpuPerRequestMs === undefined ? '—' : ms(t.cpuPerRequestMs, 3), String(t.latency.errors)]);
    }
  }
  return rows;
}

function streamTargetRows(r) {
  const rows = [];
  const sim = r.scenarios.completionsStream?.sim;
  const all = [...Object.entries(r.scenarios.completionsStream ?? {}).map(([id, t]) => [r.labels[id] ?? id, '`/v1/chat/completions`', t]),
    ...Object.entries(r.scenarios.chatTurn ?? {}).map(([id, t]) => [id === 'reference' ? 'the same turn in plain JS (bench/reference-worker.js and its Durable Object, same workerd, D1 and KV)' : r.labels[id] ?? id, 'chat turn (`event: delta`)', t])];
  for (const [label, what, t] of all) {
    if (!t.one && !t.many && !t.notImplemented && !t.error) continue; // measured only in the paired rounds
    if (t.notImplemented || t.error) { rows.push([label, what, t.notImplemented ? 'not yet implemented (404)' : `failed: ${t.error}`, '', '', '', '', '', '', '', '', '', '']); continue; }
    const addedTtft = t === sim ? '—' : ms((t.one?.ttft?.p50 ?? NaN) - (sim?.one?.ttft?.p50 ?? NaN));
    rows.push([label, what, ms(t.one?.ttft?.p50), addedTtft, ms(t.one?.gap?.p99),
      t.many ? `${num(t.many.receivedTokens)} / ${num(t.many.expectedTokens)} (${num(t.many.lostTokens)} lost)` : '—',
      t.many ? `${t.many.completed} / ${t.many.streams}` : '—',
      ms(t.many?.ttft?.p50, 0), ms(t.many?.ttft?.p99, 0), ms(t.many?.lastToken?.p99, 0), ms(t.many?.gap?.p99),
      t.many?.cpuPerChunkMs === null || t.many?.cpuPerChunkMs === undefined ? '—' : `${ms(t.many.cpuPerChunkMs, 4)} (${ms(t.many.cpuPerStreamMs, 2)}/stream)`,
      t.cpuPerExtraChunkMs == null ? '—' : ms(t.cpuPerExtraChunkMs, 4)]);
  }
  return rows;
}

export function renderMarkdown(r) {
  const m = r.machine;
  const out = [];
  out.push('# edgechat benchmarks', '');
  out.push('Produced by `npm run bench` (bench/run.mjs); do not edit by hand: the next run rewrites this file.', '');
  out.push(`Last run: ${r.date}, ${r.elapsedSeconds.toFixed(0)} s end to end (${r.setupAndBuildSeconds.toFixed(0)} s of it setup, build and installing the peers).`, '');
  out.push(`edgechat measured: commit ${r.edgechat.commit}${r.edgechat.uncommittedChanges ? ' plus uncommitted changes in the working tree' : ''}.`, '');
  out.push(`Machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}, ${m.memoryGiB.toFixed(1)} GiB memory; Node ${m.node}; ${m.workerd} (npm workerd ${m.workerdPackage}, Miniflare ${m.miniflare}, wrangler ${m.wrangler}); Python ${m.python}.`, '');
  if (m.otherCpuShare !== undefined) out.push(`Other processes on the machine (not started by this run) used ${(m.otherCpuShare * 100).toFixed(0)}% of its CPU while it measured${m.otherCpuShare > 0.05 ? ': the figures are noisier than on an idle machine' : ''}.`, '');
  out.push('Everything runs on this one machine over 127.0.0.1: the LLM simulator, every target and the load generator share the same cores, so the figures compare targets measured in the same run; they are not capacity numbers. Added latency is the target\'s percentile minus the floor\'s percentile.', '');
  out.push('## Budgets (from the design notes)', '');
  out.push(table(['budget', 'measured', 'status'], budgetRows(r)), '');
  out.push('## edgechat against its baselines', '');
  out.push('Ratio = edgechat ÷ baseline (below ×1.00 is better for times, CPU, gaps and losses; above is better for req/s).', '');
  out.push(table(['scenario', 'figure', 'edgechat', 'baseline', 'baseline value', 'ratio'], headlineRows(r)), '');
  out.push('## Every target: requests', '');
  out.push('One connection for latency (sequential keep-alive requests after a warm-up); then closed-loop load stepped through concurrency ' + r.method.steps.join(', ') + ` (${r.method.stepSeconds} s each) until p99 > ${r.method.p99LimitMs} ms or an error. CPU per request: user+system CPU of the target\'s own processes (workerd for the two workers) over the measured one-connection requests, divided by their count; raw, nothing subtracted. For the head-to-head sets (\`/health\` against the JS worker and the same response in plain JS, the cached conversation list and the non-streamed completion against the same request in plain JS and their storage floor, each other storage-floor scenario against its floor) it is instead the median of ${r.method.cpuRounds ?? 1} alternating rounds (${r.method.gatewayCpuRounds ?? r.method.cpuRounds ?? 1} for the gateway call) of ${r.method.cpuRoundRequests ?? 0} requests, so that the machine's drift affects both alike; a difference between two of them (edgechat above its storage floor, or above its baseline) is the median of their differences round by round. Under Miniflare, D1 and KV run inside the same workerd process, so edgechat\'s CPU includes its database and cache work (on Cloudflare they are separate services).`, '');
  out.push(table(['scenario', 'target', 'p50', 'p99', 'added p50', 'added p99', 'best req/s, p99 < 10 ms', 'CPU / request', 'errors'], targetRows(r)), '');
  out.push('## Every target: streams', '');
  out.push(`Each stream is 64 tokens 20 ms apart from the simulator, asked for as most clients ask (no \`stream_options\`): edgechat and the same relay in plain JS ask the upstream for usage and take it out of the client's stream (src/js/relay.js \`withoutUsage\`), the JS worker and the peers forward the request as it is. One connection: ${r.method.sequentialStreams} streams in a row after a warm-up. Then ${r.method.concurrentStreams} streams at once (one connection each, cut off at ${r.method.concurrentTimeoutSeconds} s): tokens counted as words of the text received. CPU per chunk: CPU of the target\'s processes during the ${r.method.concurrentStreams} streams ÷ tokens received (raw: includes the requests themselves and, for chat turns, their D1 writes). CPU per extra chunk: ${r.method.marginalStreams} streams of 64 chunks at once, then ${r.method.marginalStreams} of ${r.method.shortStreamTokens} chunks (same pace), CPU difference ÷ extra chunks received: what one more chunk costs, with the per-request work cancelled out; the median of ${r.method.marginalRepeats ?? 1} such pairs ("—": some streams did not finish within 20 s). edgechat and the same relay in plain JS (bench/reference-worker.js) are also measured against each other in ${r.method.marginalRepeats ?? 1} alternating rounds. Chat turns (\`POST /api/v1/conversations/{id}/messages\`, \`Accept: text/event-stream\`) each start a fresh conversation that offers no tools, spread over ${r.method.chatUsers ?? 1} users (edgechat runs a turn in its user's Durable Object, so at 256 streams each object runs ${Math.ceil(r.method.concurrentStreams / (r.method.chatUsers ?? 1))} turns); the same turn in plain JS (bench/reference-worker.js, its Durable Object in bench/reference-turns.js: the same admission batch, one object per user, one delta and one SQLite insert per pass over what the upstream sent, fan-out to readers, one final D1 batch) runs the 256 streams too, and its CPU per extra chunk is measured against edgechat's in ${r.method.marginalRepeats ?? 1} alternating rounds, which give both chat-turn figures of that column.`, '');
  out.push(table(['target', 'endpoint', 'TTFT p50', 'added TTFT p50', 'gap p99, 1 conn', `tokens received, ${r.method.concurrentStreams} streams`, 'streams completed', 'TTFT p50, 256', 'TTFT p99, 256', 'last token p99, 256', 'gap p99, 256', 'CPU per chunk', 'CPU per extra chunk'], streamTargetRows(r)), '');
  out.push('Note: a gap p99 below 20 ms at 256 streams means tokens arrived in bursts (the stream started late and caught up), not a faster stream: read it with the TTFT and last-token columns.', '');
  out.push('## Peak memory', '');
  out.push('Peak resident memory of each target\'s processes over the whole run, after 256 concurrent streams; for the two workers this is the whole workerd process (Miniflare\'s own services, D1 and KV included).', '');
  out.push(table(['process', 'peak RSS (VmHWM)'], Object.entries(r.memory).map(([id, v]) => [r.labels[id] ?? id, mib(v)])), '');
  out.push(renderResumeSection(r));
  out.push(renderAgentSection(r.agent));
  const problems = problemLines(r);
  if (problems.length) {
    out.push('## Errors seen', '');
    for (const p of problems) out.push(`- ${p}`);
    out.push('');
  }
  out.push('## What ran', '');
  for (const t of r.targetsRun) out.push(`- ${t}`);
  for (const n of r.notRun) out.push(`- not run: ${n.target}: ${n.reason}`);
  out.push('');
  out.push('## How to run', '');
  out.push('`npm run bench` (sets up and builds first; about 12-14 minutes on 2 cores; the first run also installs LiteLLM into bench/.venv and Portkey into bench/.peers, both cached). Results: `bench-results/latest.md` and `latest.json` (plus a timestamped copy of each) and this file.', '');
  return out.join('\n');
}

/** Writes bench-results/{latest,<stamp>}.{md,json} and docs/benchmarks.md. */
export function writeReports(root, results) {
  const md = renderMarkdown(results);
  const dir = path.join(root, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.date.replace(/ UTC$/, 'Z').replace(/[-:]/g, '').replace(' ', 'T');
  const json = JSON.stringify(results, null, 2) + '\n';
  for (const name of ['latest', `bench-${stamp}`]) {
    writeFileSync(path.join(dir, `${name}.md`), md);
    writeFileSync(path.join(dir, `${name}.json`), json);
  }
  mkdirSync(path.join(root, 'docs'), { recursive: true });
  writeFileSync(path.join(root, 'docs/benchmarks.md'), md);
  return md;
}
