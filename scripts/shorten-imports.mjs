// Renames the wasm's imports from wasm-bindgen's long hashed names (`__wbg_get_e6325ad374eff861`)
// to short ones (`a`, `b`, ..., `ba`, ...) in both the wasm and its JS glue: the names are
// random hex that gzip cannot compress. Usage:
//   node scripts/shorten-imports.mjs <in.wasm> <glue.js> <out.wasm>
// The glue file is rewritten in place. Fails if a name is not found in the glue exactly once
// as an object key, so a change in wasm-bindgen's output stops the build instead of breaking it.
import { readFileSync, writeFileSync } from 'node:fs';

const [input, gluePath, output] = process.argv.slice(2);
if (!output) throw new Error('usage: shorten-imports.mjs <in.wasm> <glue.js> <out.wasm>');
const wasm = readFileSync(input);
let glue = readFileSync(gluePath, 'utf8');

/** Reads an unsigned LEB128 at `at`; returns [value, next offset]. */
function leb(bytes, at) {
  let value = 0, shift = 0, byte;
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}
function encodeLeb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return Buffer.from(out);
}
const name = (bytes, at) => {
  const [len, start] = leb(bytes, at);
  return [bytes.subarray(start, start + len).toString('utf8'), start + len];
};
const encodeName = (text) => Buffer.concat([encodeLeb(Buffer.byteLength(text)), Buffer.from(text)]);
/** Skips a limits structure (tables, memories). */
function limits(bytes, at) {
  const flags = bytes[at++];
  [, at] = leb(bytes, at);
  if (flags & 1) [, at] = leb(bytes, at);
  return at;
}
/** The short name of the n-th import: a, b, ..., z, ba, bb, ... (letters only: valid JS keys). */
const short = (n) => {
  let text = '';
  do {
    text = String.fromCharCode(97 + (n % 26)) + text;
    n = Math.floor(n / 26);
  } while (n > 0);
  return text;
};

if (wasm.readUInt32LE(0) !== 0x6d736100) throw new Error(`${input} is not a wasm module`);
const parts = [wasm.subarray(0, 8)];
let at = 8, renamed = 0;
const assigned = new Map(); // a name imported twice keeps one short name
while (at < wasm.length) {
  const id = wasm[at];
  const [size, start] = leb(wasm, at + 1);
  const end = start + size;
  if (id !== 2) {
    parts.push(wasm.subarray(at, end));
    at = end;
    continue;
  }
  let [count, p] = leb(wasm, start);
  const entries = [encodeLeb(count)];
  for (let i = 0; i < count; i++) {
    let module, field;
    [module, p] = name(wasm, p);
    [field, p] = name(wasm, p);
    const descStart = p, kind = wasm[p++];
    if (kind === 0 || kind === 4) { // function: type index; tag: attribute, type index
      if (kind === 4) p++;
      [, p] = leb(wasm, p);
    } else if (kind === 1) p = limits(wasm, p + 1); // table: reference type, limits
    else if (kind === 2) p = limits(wasm, p); // memory: limits
    else if (kind === 3) p += 2; // global: value type, mutability
    else throw new Error(`import ${field}: unknown kind ${kind}`);
    let newField = field;
    if (module === './edgechat_bg.js' && assigned.has(field)) newField = assigned.get(field);
    else if (module === './edgechat_bg.js') {
      newField = short(renamed++);
      assigned.set(field, newField);
      const key = new RegExp(`(?<![\\w$])${field.replace(/\$/g, '\\$')}(?=\\s*:)`, 'g');
      const hits = glue.match(key)?.length ?? 0;
      if (hits !== 1) throw new Error(`import ${field}: found ${hits} times as a key in ${gluePath}, expected once`);
      glue = glue.replace(key, newField);
    }
    entries.push(encodeName(module), encodeName(newField), wasm.subarray(descStart, p));
  }
  if (p !== end) throw new Error('import section: unexpected trailing bytes');
  const payload = Buffer.concat(entries);
  parts.push(Buffer.from([2]), encodeLeb(payload.length), payload);
  at = end;
}
writeFileSync(output, Buffer.concat(parts));
writeFileSync(gluePath, glue);
console.log(`shorten-imports: ${renamed} imports renamed`);
