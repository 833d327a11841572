// sim/embeddings.mjs — OpenAI Embeddings wire format: validation, deterministic vectors (float or base64), usage.
//
// A provider for engine.mjs like openai.mjs, with `answer(ctx)` (a whole JSON answer) in place of a text plan,
// so the fault options (status, delay, hang, fail_times, garbage) apply to embeddings too.

import { rngFor } from './text.mjs';

export { name, authMessage, authorized, headers, errorBody } from './openai.mjs';

/** Vector length when the request sets no `dimensions`. */
export const DEFAULT_DIMENSIONS = 256;
/** Longest vector the simulator makes, and most inputs per request (OpenAI's limit). */
export const MAX_DIMENSIONS = 4096;
export const MAX_INPUTS = 2048;

const isToken = (t) => Number.isInteger(t) && t >= 0 && t <= 0xffffffff;

/** The request's inputs as a list (each a string or an array of token ids), or null when `input` has none of OpenAI's shapes. */
export function inputs(input) {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return null;
  if (input.every((x) => typeof x === 'string')) return input;
  if (input.every(isToken)) return [input];
  if (input.every((x) => Array.isArray(x) && x.every(isToken))) return input;
  return null;
}

export function validate(body) {
  if (typeof body.model !== 'string' || !body.model) return 'you must provide a model parameter';
  if (body.input === undefined || body.input === null) return "Missing required parameter: 'input'.";
  const list = inputs(body.input);
  if (!list) return "Invalid 'input': expected a string, an array of strings, an array of integers or an array of integer arrays.";
  if (list.some((x) => x.length === 0)) return "Invalid 'input': an input must not be empty.";
  if (list.length > MAX_INPUTS) return `Invalid 'input': at most ${MAX_INPUTS} inputs per request.`;
  const format = body.encoding_format;
  if (format != null && format !== 'float' && format !== 'base64') return "Invalid 'encoding_format': expected 'float' or 'base64'.";
  const dims = body.dimensions;
  if (dims != null && !(Number.isInteger(dims) && dims >= 1 && dims <= MAX_DIMENSIONS)) {
    return `Invalid 'dimensions': expected an integer between 1 and ${MAX_DIMENSIONS}.`;
  }
  return null;
}

/**
 * The vector for one input: `dimensions` float32 values from a generator seeded with the base model and the
 * input (its text, or its token ids joined by commas), scaled to unit length. Same input, same vector; a
 * shorter `dimensions` gives the longer vector's first values, renormalized (as OpenAI's `dimensions` does).
 */
export function vector(base, input, dimensions = DEFAULT_DIMENSIONS) {
  const rng = rngFor(`${base}\n${typeof input === 'string' ? input : `tokens:${input.join(',')}`}`);
  const values = Array.from({ length: dimensions }, () => rng() * 2 - 1);
  const norm = Math.hypot(...values) || 1;
  return values.map((v) => Math.fround(v / norm));
}

/** A vector as OpenAI's `encoding_format: "base64"` sends it: its little-endian float32 bytes. */
export function toBase64(values) {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString('base64');
}

/** Tokens of one input: a text's `ceil(characters / 4)` (at least 1), a token array's length. */
export function inputTokens(input) {
  return typeof input === 'string' ? Math.max(1, Math.ceil(input.length / 4)) : input.length;
}

/** The whole `list` answer. `no_usage` leaves usage out (an upstream that reports none). */
export function answer(ctx) {
  const { body } = ctx;
  const list = inputs(body.input);
  const base64 = body.encoding_format === 'base64';
  const data = list.map((input, index) => {
    const values = vector(ctx.base, input, body.dimensions ?? DEFAULT_DIMENSIONS);
    return { object: 'embedding', index, embedding: base64 ? toBase64(values) : values };
  });
  const promptTokens = list.reduce((sum, input) => sum + inputTokens(input), 0);
  const out = { object: 'list', data, model: ctx.base, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } };
  if (ctx.opts.no_usage) delete out.usage;
  return out;
}
