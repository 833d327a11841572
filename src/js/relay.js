// workers-rs lacks a tee that lets the runtime pipe a body to the client while Rust reads a copy.
// The byte path behind pass-through streams (src/relay.rs). The upstream body is teed. Until
// its first bytes arrive, the client gets SSE heartbeats (one it does not take means it left),
// then `stallTail` if nothing came within stallMs, or `errorTail` if the upstream broke off
// (both error events). From the first bytes on, one branch is piped to the client by the
// runtime: native code, no JavaScript and no wasm per chunk. The other branch is drained a few
// times a second (what it buffered since) into a copy that Rust reads once at the end for
// usage and the cache; the drain also notices an upstream that stalls mid-stream. `ended`
// says how the stream ended: "end" (the upstream finished), "gone" (the client left),
// "stalled" (nothing for stallMs; the caller aborts the upstream) or "error" (the upstream
// broke off). The heartbeat and stall rules and their values are Rust's (`Pacing` in
// src/upstream.rs): this file applies them to a stream Rust does not read. Once piping, a
// broken or stalled upstream ends the client's stream without its final `data: [DONE]`, as a
// direct connection to the upstream would.

const TIMEOUT = Symbol('timeout');
const PING = new TextEncoder().encode(': ping\n\n');
const sleep = (ms) => new Promise((resolve) => { setTimeout(() => resolve(TIMEOUT), ms); });

export class Relay {
  constructor(upstream, stallMs, heartbeatMs, keepBytes, stallTail, errorTail, signal) {
    const [toClient, toCopy] = upstream.tee();
    const pipe = new IdentityTransformStream();
    this.readable = pipe.readable;
    this.writable = pipe.writable;
    this.toClient = toClient;
    this.reader = toCopy.getReader();
    this.pending = null;
    this.chunks = [];
    this.kept = 0;
    this.keepBytes = keepBytes;
    this.truncated = false;
    this.lastProgress = Date.now();
    this.state = '';
    this.timer = null;
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
    // The request's abort signal (when the runtime has one): the client left.
    signal?.addEventListener('abort', () => this.clientLeft(), { once: true });
    this.start(stallMs, heartbeatMs, stallTail, errorTail);
  }

  async start(stallMs, heartbeatMs, stallTail, errorTail) {
    const writer = this.writable.getWriter();
    // A write the client does not take within stallMs means it has gone.
    const send = (bytes) => Promise.race([writer.write(bytes).then(() => true, () => false), sleep(stallMs).then(() => false)]);
    const end = async (tail, state) => {
      const here = await send(tail);
      if (here) await writer.close().catch(() => {});
      this.settle(here ? state : 'gone');
    };
    const deadline = Date.now() + stallMs;
    for (;;) {
      this.pending ??= this.reader.read();
      let read;
      try {
        read = await Promise.race([this.pending, sleep(Math.min(heartbeatMs, Math.max(1, deadline - Date.now())))]);
      } catch {
        this.pending = null;
        return end(errorTail, 'error');
      }
      if (this.state) return;
      if (read !== TIMEOUT) {
        this.pending = null;
        if (!read.done) this.keep(read.value);
        break;
      }
      if (Date.now() >= deadline) return end(stallTail, 'stalled');
      if (!(await send(PING))) return this.settle('gone');
    }
    writer.releaseLock();
    const tickMs = Math.max(20, Math.min(250, stallMs / 4));
    this.timer = setInterval(() => this.tick(stallMs), tickMs);
    // preventCancel: the client leaving must not cancel the upstream before the copy is drained.
    this.toClient.pipeTo(this.writable, { preventCancel: true }).then(
      () => this.pipeEnded(true),
      (err) => this.pipeEnded(false, err),
    );
  }

  keep(chunk) {
    this.lastProgress = Date.now();
    if (chunk.byteLength === 0) return;
    if (this.kept + chunk.byteLength <= this.keepBytes) {
      this.chunks.push(chunk);
      this.kept += chunk.byteLength;
    } else {
      this.truncated = true;
    }
  }

  /**
   * Takes what is buffered on the copy, and what arrives within `waitMs` (a buffered chunk
   * comes back at once). One timer per drain, not per chunk: timers are the dearest part of a
   * read. Resolves true once the copy has ended; rejects if the upstream broke off.
   */
  async drain(waitMs) {
    const timeout = sleep(waitMs);
    for (;;) {
      this.pending ??= this.reader.read();
      const read = await Promise.race([this.pending, timeout]);
      if (read === TIMEOUT) return false;
      this.pending = null;
      if (read.done) return true;
      this.keep(read.value);
    }
  }

  async tick(stallMs) {
    if (this.draining || this.state) return;
    this.draining = true;
    try {
      await this.drain(5);
    } catch {
      // The upstream broke off: the pipe reports it.
    } finally {
      this.draining = false;
    }
    if (!this.state && Date.now() - this.lastProgress >= stallMs) this.settle('stalled');
  }

  settle(state) {
    if (this.state) return;
    this.state = state;
    clearInterval(this.timer);
    if (state !== 'end') {
      this.reader.cancel().catch(() => {});
      this.toClient.cancel().catch(() => {});
    }
    this.resolveEnded(state);
  }

  /** The request was aborted: what the copy has buffered is taken, then the relay ends. */
  async clientLeft() {
    if (this.state || this.leaving) return;
    this.leaving = true;
    // Before the first bytes the start loop owns the reads: nothing was relayed yet.
    if (!this.timer) return this.settle('gone');
    while (this.draining) await sleep(5);
    this.draining = true;
    await this.drain(20).catch(() => {});
    this.settle('gone');
  }

  async pipeEnded(finished, err) {
    if (this.state || this.leaving) return;
    // The client's side was cancelled: it left.
    if (err?.name === 'AbortError') {
      await this.drain(20).catch(() => {});
      return this.settle('gone');
    }
    try {
      // After a finished pipe everything is buffered on the copy and it ends at once; after
      // a failed one, a copy that still reads means the upstream is fine: the client left.
      const ended = await this.drain(finished ? 60_000 : 20);
      this.settle(finished || ended ? 'end' : 'gone');
    } catch {
      this.settle('error');
    }
  }

  /** Everything copied (up to keepBytes), as one array. */
  bytes() {
    const out = new Uint8Array(this.kept);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    this.chunks = [];
    return out;
  }
}
