// scripts/shorten-imports.mjs: the build step that gives the wasm's imports short names in both
// the wasm and its JS glue. Run on a small hand-assembled module with every kind of import.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/shorten-imports.mjs', import.meta.url));
const GLUE_MODULE = './edgechat_bg.js';
const LOG = '__wbg_log_0123456789abcdef';
const OTHER = '__wbg_other_fedcba9876543210';
const GLOBAL = '__wbindgen_global_0011223344556677';

const bytes = (...parts) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
const name = (text) => bytes([Buffer.byteLength(text)], Buffer.from(text));
const leb = (n) => (n < 128 ? [n] : [(n % 128) | 0x80, ...leb(Math.floor(n / 128))]);
const section = (id, payload) => bytes([id, ...leb(payload.length)], payload);

/** Imports: two functions (one of them twice) and a global from the glue, a memory and a table from elsewhere; `run` calls the first. */
function module() {
  const imports = bytes(
    [6],
    name(GLUE_MODULE), name(LOG), [0x00, 0x00],
    name('env'), name('mem'), [0x02, 0x01, 0x01, 0x02],
    name(GLUE_MODULE), name(GLOBAL), [0x03, 0x7f, 0x00],
    name('env'), name('table'), [0x01, 0x70, 0x00, 0x01],
    name(GLUE_MODULE), name(OTHER), [0x00, 0x00],
    name(GLUE_MODULE), name(LOG), [0x00, 0x00],
  );
  return bytes(
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    section(1, bytes([1, 0x60, 0x00, 0x00])),
    section(2, imports),
    section(3, bytes([1, 0])),
    section(7, bytes([1], name('run'), [0x00, 0x03])),
    section(10, bytes([1, 4, 0x00, 0x10, 0x00, 0x0b])),
  );
}

const glueText = (names = [LOG, OTHER, GLOBAL]) => `export const calls = [];
export const imports = {
    ${JSON.stringify(GLUE_MODULE)}: {
${names.map((n) => `        ${n}: ${n === GLOBAL ? "new WebAssembly.Global({ value: 'i32' }, 7)" : `function() { calls.push('${n === LOG ? 'log' : 'other'}'); }`},`).join('\n')}
    },
};
`;

const dirs = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function workdir(glue) {
  const dir = mkdtempSync(path.join(tmpdir(), 'shorten-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'in.wasm'), module());
  writeFileSync(path.join(dir, 'glue.mjs'), glue);
  return dir;
}

test('imports from the glue get short names in the wasm and the glue, and the module still links', async () => {
  const dir = workdir(glueText());
  execFileSync('node', [SCRIPT, path.join(dir, 'in.wasm'), path.join(dir, 'glue.mjs'), path.join(dir, 'out.wasm')]);
  const out = new WebAssembly.Module(readFileSync(path.join(dir, 'out.wasm')));
  assert.deepEqual(
    WebAssembly.Module.imports(out).map((i) => `${i.module} ${i.name} ${i.kind}`),
    [`${GLUE_MODULE} a function`, 'env mem memory', `${GLUE_MODULE} b global`, 'env table table', `${GLUE_MODULE} c function`, `${GLUE_MODULE} a function`],
  );
  const glue = readFileSync(path.join(dir, 'glue.mjs'), 'utf8');
  for (const long of [LOG, OTHER, GLOBAL]) assert.ok(!glue.includes(long), `${long} is left in the glue`);
  const { calls, imports } = await import(pathToFileURL(path.join(dir, 'glue.mjs')));
  imports.env = { mem: new WebAssembly.Memory({ initial: 1, maximum: 2 }), table: new WebAssembly.Table({ initial: 1, element: 'anyfunc' }) };
  new WebAssembly.Instance(out, imports).exports.run();
  assert.deepEqual(calls, ['log'], 'run calls the import that was named LOG');
  assert.ok(readFileSync(path.join(dir, 'out.wasm')).length < module().length - 60);
});

test('an import the glue does not define as a key stops the build', () => {
  const dir = workdir(glueText([LOG, GLOBAL]));
  const run = spawnSync('node', [SCRIPT, path.join(dir, 'in.wasm'), path.join(dir, 'glue.mjs'), path.join(dir, 'out.wasm')], { encoding: 'utf8' });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, new RegExp(`import ${OTHER}: found 0 times`));
});

test('a file that is not wasm is refused', () => {
  const dir = workdir(glueText());
  writeFileSync(path.join(dir, 'in.wasm'), 'not wasm');
  const run = spawnSync('node', [SCRIPT, path.join(dir, 'in.wasm'), path.join(dir, 'glue.mjs'), path.join(dir, 'out.wasm')], { encoding: 'utf8' });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /is not a wasm module/);
});
