// bench/load.mjs — HTTP request loops: one-connection latency runs and stepped closed-loop load (keep-alive, loopback only).
import http from 'node:http';

/** Nearest-rank percentile of an ascending array (ms); null when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : null;
  return { count: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p95: percentile(s, 95), p99: percentile(s, 99), max: s.at(-1) ?? null, mean };
}

/**
 * `path` under `base`, which may carry a path of its own (`http://127.0.0.1:8787/reference`):
 * joined as text, because `new URL('/x', base)` would drop the base's path.
 */
export function targetUrl(base, path) {
  return new URL(base.replace(/\/$/, '') + path);
}

/** One HTTP request over `agent`; resolves { status, headers, body, ms } (body as a string). */
export function request(agent, base, { method = 'GET', path = '/', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const url = targetUrl(base, path);
  if (url.hostname !== '127.0.0.1') throw new Error(`refusing to send load to ${url.hostname}`);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const h = { ...headers };
  if (payload !== undefined) {
    h['content-type'] ??= 'application/json';
    h['content-length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = http.request(url, { method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        ms: Number(process.hrtime.bigint() - start) / 1e6,
      }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A JSON API call (no timing): returns { status, headers, json }. */
export async function api(base, method, path, { json, token, headers = {} } = {}) {
  const agent = new http.Agent({ keepAlive: false });
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  const res = await request(agent, base, { method, path, headers: h, body: json });
  agent.destroy();
  let parsed = null;
  try { parsed = res.body ? JSON.parse(res.body) : null; } catch {}
  return { status: res.status, headers: res.headers, json: parsed, text: res.body };
}

/** `spec` is a request spec, or a function (i) => spec for requests that vary. */
const specAt = (spec, i) => (typeof spec === 'function' ? spec(i) : spec);
const isOk = (res, spec) => (spec.check ? spec.check(res) : res.status >= 200 && res.status < 300);

/**
 * `n` sequential requests on one keep-alive connection after `warmup` unmeasured ones.
 * `around` (optional) is { before(), after() } called right around the measured part
 * (for CPU counters). Returns latency percentiles in ms, errors and the first error seen.
 */
export async function latencyRun(base, spec, { n = 500, warmup = 100, around } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples = [];
  let errors = 0;
  let firstError = null;
  try {
    for (let i = 0; i < warmup; i++) await request(agent, base, specAt(spec, i)).catch(() => {});
    const before = await around?.before();
    for (let i = 0; i < n; i++) {
      const s = specAt(spec, warmup + i);
      try {
        const res = await request(agent, base, s);
        if (isOk(res, s)) samples.push(res.ms);
        else { errors++; firstError ??= `HTTP ${res.status} ${res.body.slice(0, 160)}`; }
      } catch (err) { errors++; firstError ??= err.message; }
    }
    const after = await around?.after(before, n);
    return { ...summarize(samples), n, errors, firstError, ...(after ?? {}) };
  } finally {
    agent.destroy();
  }
}

/** Closed loop: `concurrency` workers send requests back to back for `durationMs`. */
export async function loadRun(base, spec, { concurrency, durationMs }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const samples = [];
  let errors = 0;
  let firstError = null;
  let i = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const s = specAt(spec, i++);
      try {
        const res = await request(agent, base, s);
        if (isOk(res, s)) samples.push(res.ms);
        else { errors++; firstError ??= `HTTP ${res.status} ${res.body.slice(0, 160)}`; }
      } catch (err) { errors++; firstError ??= err.message; }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { concurrency, seconds, rps: samples.length / seconds, ...summarize(samples), errors, firstError };
}

/**
 * Steps the concurrency up until p99 goes over `p99LimitMs` or a request fails; returns every
 * step and the best request rate among the steps that stayed within the limit without errors.
 */
export async function rateSteps(base, spec, { steps = [1, 2, 4, 8, 16, 32], durationMs = 4000, p99LimitMs = 10 } = {}) {
  await loadRun(base, spec, { concurrency: steps[0], durationMs: 300 }); // warm-up
  const results = [];
  let best = null;
  for (const concurrency of steps) {
    const r = await loadRun(base, spec, { concurrency, durationMs });
    const ok = r.errors === 0 && r.count > 0 && r.p99 <= p99LimitMs;
    results.push({ concurrency, rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors, firstError: r.firstError, ok });
    if (ok && (!best || r.rps > best.rps)) best = { concurrency, rps: r.rps, p99: r.p99 };
    if (!ok) break;
  }
  return { best, steps: results, p99LimitMs };
}
