// The chat page's first load, measured in headless Chromium: for each page directory given (the
// current public/ when none), the bytes the first load fetches (each file as served and its gzip -9
// size) and the median over a few runs of first contentful paint and DOMContentLoaded. The files
// are served by a small loopback server with the worker's Content-Security-Policy, so that two
// versions of the page are measured the same way; the page's API calls answer 404 (it then shows
// its login screen, as a first visit does).
//   node bench/page.mjs [DIR ...] [--runs N]
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { launchBrowser } from '../tests/browser/helpers.mjs';

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.woff2': 'font/woff2' };

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 7;
const dirs = args.length ? args : [path.resolve(path.dirname(new URL(import.meta.url).pathname), '../public')];

function serve(dir) {
  const server = http.createServer(async (req, res) => {
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(dir, p === '/' ? 'index.html' : p);
    if (!file.startsWith(dir) || p.startsWith('/api/')) return res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'content-security-policy': CSP });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await launchBrowser();
try {
  const sites = [];
  for (const dir of dirs) {
    const server = await serve(path.resolve(dir));
    sites.push({ dir, server, url: `http://127.0.0.1:${server.address().port}/`, fcp: [], dcl: [], files: [] });
  }
  // The versions take turns run by run, so that a busy moment of the machine hits them alike.
  for (let i = 0; i < runs + 1; i++) {
    for (const site of sites) {
      const context = await browser.newContext(); // a cold cache every run
      const page = await context.newPage();
      const fetched = [];
      page.on('response', (r) => { if (r.status() === 200) fetched.push(new URL(r.url()).pathname); });
      await page.goto(site.url, { waitUntil: 'load' });
      await page.locator('#auth').waitFor({ state: 'visible' });
      const t = await page.evaluate(() => ({
        fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
        dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
      }));
      if (i > 0) { site.fcp.push(t.fcp); site.dcl.push(t.dcl); } // the first run warms the browser up
      site.files = fetched;
      await context.close();
    }
  }
  for (const { dir, server, fcp, dcl, files } of sites) {
    let raw = 0;
    let gz = 0;
    const rows = [];
    for (const f of [...new Set(files)]) {
      const body = await readFile(path.join(path.resolve(dir), f === '/' ? 'index.html' : f));
      const g = gzipSync(body, { level: 9 }).length;
      raw += body.length;
      gz += g;
      rows.push(`  ${f}: ${body.length} bytes, ${g} gzip`);
    }
    console.log(`${dir}: first load fetches ${rows.length} files, ${raw} bytes, ${gz} bytes gzip -9`);
    console.log(rows.join('\n'));
    console.log(`  median of ${runs} runs: first contentful paint ${median(fcp).toFixed(1)} ms, DOMContentLoaded ${median(dcl).toFixed(1)} ms`);
    server.close();
  }
} finally {
  await browser.close();
}
