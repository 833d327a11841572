// bench/passthrough-worker.js — the baseline: a plain JavaScript Worker that forwards every request to env.UPSTREAM and streams the answer back; GET /health answers itself.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/health') return Response.json({ status: 'ok' });
    return fetch(new Request(new URL(url.pathname + url.search, env.UPSTREAM), request));
  },
};
