// `npm run dev` starts the simulator and the worker on loopback, and SIGTERM to the npm
// process stops both, leaving nothing listening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { ROOT, freePort } from '../support/stack.mjs';

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('npm run dev serves a ready worker and SIGTERM stops the worker and the simulator', async () => {
  const port = await freePort();
  const simPort = await freePort();
  const npm = spawn('npm', ['run', 'dev'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), SIM_PORT: String(simPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout.on('data', (c) => { out += c; });
  npm.stderr.on('data', (c) => { out += c; });
  const exited = once(npm, 'exit');
  try {
    const deadline = Date.now() + 120_000;
    while (!out.includes('edgechat is running at') && Date.now() < deadline && npm.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(out, new RegExp(`edgechat is running at http://127\\.0\\.0\\.1:${port}`), out.slice(-2000));
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    assert.equal(ready.status, 200);
    const models = await fetch(`http://127.0.0.1:${simPort}/v1/models`);
    assert.equal(models.status, 200);
  } finally {
    npm.kill('SIGTERM');
    await exited;
  }
  // Everything it started is gone: both ports refuse connections.
  let open = true;
  for (let i = 0; i < 50 && open; i++) {
    open = (await portOpen(port)) || (await portOpen(simPort));
    if (open) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(open, false, 'worker or simulator still listening after SIGTERM');
});
