// sim/options.mjs — the per-request option grammar: `base+key=value+flag` in the model name or x-sim-options header.

/** Options taking a non-negative integer value. */
const NUMERIC = new Set(['tokens', 'interval', 'delay', 'status', 'retry_after', 'fail_times', 'cut', 'malformed', 'pad_kib']);
/** Options that are plain flags (`echo`, or `echo=1` / `echo=true`; `=0` / `=false` turns them off). */
const FLAGS = new Set(['echo', 'hang', 'garbage', 'no_usage', 'tool_loop']);

export class OptionError extends Error {}

/**
 * Parse a `+`-separated option list ("tokens=5+interval=0+echo") into an object.
 * Keys may use `-` or `_` (retry-after == retry_after). Throws OptionError on unknown keys or bad values.
 */
export function parseOptionList(text) {
  const options = {};
  for (const raw of String(text ?? '').split('+')) {
    const part = raw.trim();
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase().replaceAll('-', '_');
    const value = eq < 0 ? undefined : part.slice(eq + 1).trim();
    options[key] = parseValue(key, value);
  }
  return options;
}

function parseValue(key, value) {
  if (FLAGS.has(key)) {
    if (value === undefined || value === '1' || value === 'true') return true;
    if (value === '0' || value === 'false') return false;
    throw new OptionError(`sim option '${key}' is a flag (got '${value}')`);
  }
  if (!NUMERIC.has(key)) throw new OptionError(`unknown sim option '${key}'`);
  if (value === undefined || !/^\d{1,9}$/.test(value)) {
    throw new OptionError(`sim option '${key}' needs a non-negative integer value (got '${value ?? ''}')`);
  }
  return Number(value);
}

/** Split "sim-small+tokens=4" into { base: "sim-small", options: { tokens: 4 } }. */
export function parseModel(model) {
  const s = String(model ?? '');
  const plus = s.indexOf('+');
  if (plus < 0) return { base: s, options: {} };
  return { base: s.slice(0, plus), options: parseOptionList(s.slice(plus + 1)) };
}

/** Options from the model name, overridden by the x-sim-options header (if any). */
export function resolveOptions(model, header) {
  const { base, options } = parseModel(model);
  if (header) Object.assign(options, parseOptionList(Array.isArray(header) ? header.join('+') : header));
  return { base, options };
}
