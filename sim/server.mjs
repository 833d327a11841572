// sim/server.mjs — the LLM simulator HTTP server: routing, request records, createSimulator() and the CLI entry point.

import http from 'node:http';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as openai from './openai.mjs';
import * as anthropic from './anthropic.mjs';
import * as embeddings from './embeddings.mjs';
import { handle } from './engine.mjs';

export { generateTokens, echoTokens, seedText, promptTokens, contentText, fnv1a, mulberry32, VOCAB } from './text.mjs';
export { parseModel, parseOptionList, resolveOptions, OptionError } from './options.mjs';
export { toolArguments } from './openai.mjs';

export const MODELS = ['sim-small', 'sim-large', 'sim-embed'];
const MODELS_CREATED = 1735689600; // 2025-01-01T00:00:00Z

/**
 * Create a simulator. options: { apiKey?, tokens = 32, intervalMs = 20, maxRecords = 10000 }.
 * Returns { server, listen(port = 0, host = '127.0.0.1') -> Promise<{ port, url }>, close() -> Promise, requests }.
 */
export function createSimulator(options = {}) {
  const sim = {
    apiKey: options.apiKey || null,
    tokens: options.tokens ?? 32,
    intervalMs: options.intervalMs ?? 20,
    maxRecords: options.maxRecords ?? 10000,
    requests: [],
    failCounts: new Map(),
    seq: 0,
    record(fields) {
      const rec = { seq: ++sim.seq, ...fields };
      sim.requests.push(rec);
      if (sim.requests.length > sim.maxRecords) sim.requests.splice(0, sim.requests.length - sim.maxRecords);
      return rec;
    },
  };

  const server = http.createServer({ noDelay: true }, (req, res) => {
    route(sim, req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, openai.errorBody(500, `simulator error: ${err.message}`));
      else res.destroy();
    });
  });

  return {
    server,
    requests: sim.requests,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const actual = server.address().port;
          const urlHost = host.includes(':') ? `[${host}]` : host;
          resolve({ port: actual, url: `http://${urlHost}:${actual}` });
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function route(sim, req, res) {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const provider = path === '/v1/chat/completions' ? openai : path === '/v1/messages' ? anthropic
    : path === '/v1/embeddings' ? embeddings : null;
  if (provider) {
    if (req.method !== 'POST') return sendJson(res, 405, provider.errorBody(405, `Method ${req.method} not allowed.`));
    return handle(sim, provider, req, res, path);
  }
  if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'ok' });
  if (path === '/v1/models' && req.method === 'GET') return listModels(sim, req, res);
  if (path === '/_sim/requests') {
    if (req.method === 'GET') return sendJson(res, 200, { data: filterRecords(sim.requests, req.url) });
    if (req.method === 'DELETE') {
      const deleted = sim.requests.length;
      sim.requests.length = 0;
      sim.failCounts.clear();
      return sendJson(res, 200, { deleted });
    }
  }
  req.resume();
  return sendJson(res, 404, openai.errorBody(404, `Unknown request URL: ${req.method} ${path}.`));
}

function listModels(sim, req, res) {
  if (sim.apiKey && !openai.authorized(req.headers, sim.apiKey) && !anthropic.authorized(req.headers, sim.apiKey)) {
    return sendJson(res, 401, openai.errorBody(401, openai.authMessage));
  }
  const data = MODELS.map((id) => ({ id, object: 'model', created: MODELS_CREATED, owned_by: 'edgechat-sim' }));
  return sendJson(res, 200, { object: 'list', data });
}

/** ?model=substring (of the requested model string) and ?contains=text (in the JSON of system + messages, + input). */
function filterRecords(records, url) {
  const params = new URL(url, 'http://sim').searchParams;
  const model = params.get('model');
  const contains = params.get('contains');
  return records.filter((r) => {
    if (model !== null && !(r.model ?? '').includes(model)) return false;
    if (contains !== null) {
      const parts = [r.body?.system ?? null, r.body?.messages ?? null];
      if (r.body?.input !== undefined) parts.push(r.body.input); // an embeddings request
      const prompt = JSON.stringify(parts);
      if (!prompt.includes(contains)) return false;
    }
    return true;
  });
}

function sendJson(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// ---------------------------------------------------------------- CLI

const USAGE = `usage: node sim/server.mjs [--port N] [--host H] [--api-key K] [--tokens N] [--interval-ms MS] [--max-records N]
env: SIM_PORT, SIM_HOST, SIM_API_KEY`;

/** Parse CLI flags (`--flag value` or `--flag=value`) over env defaults. Throws on unknown flags. */
export function parseArgs(argv, env = {}) {
  const out = {
    port: Number(env.SIM_PORT ?? 0),
    host: env.SIM_HOST || '127.0.0.1',
    apiKey: env.SIM_API_KEY || undefined,
  };
  const keys = { port: 'port', host: 'host', 'api-key': 'apiKey', tokens: 'tokens', 'interval-ms': 'intervalMs', 'max-records': 'maxRecords' };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    const key = m && keys[m[1]];
    if (!key) throw new Error(`unknown argument '${argv[i]}'`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`missing value for --${m[1]}`);
    out[key] = key === 'host' || key === 'apiKey' ? value : Number(value);
    if (Number.isNaN(out[key])) throw new Error(`--${m[1]} needs a number`);
  }
  return out;
}

async function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let args;
  try {
    args = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  const sim = createSimulator(args);
  const { url } = await sim.listen(args.port, args.host);
  process.stdout.write(`sim listening on ${url}\n`);
  const shutdown = () => sim.close().then(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) main();
