// The byte pump behind pass-through streams (src/relay.rs): upstream chunks go to the client
// here, in JavaScript, so a stream whose format already matches the client's costs no wasm
// work per chunk. It keeps a copy of what it relayed for Rust to read once at the end, sends
// SSE heartbeats only between whole events, and tells Rust how the stream ended: "end" (the
// upstream finished), "gone" (the client left or stopped reading for stallMs), "stalled" (the
// upstream sent nothing for stallMs) or "error" (the upstream broke off).

const PING = new TextEncoder().encode(': ping\n\n');

export class Relay {
  constructor(upstream, stallMs, heartbeatMs, keepBytes) {
    this.reader = upstream.getReader();
    this.chunks = [];
    this.kept = 0;
    this.keepBytes = keepBytes;
    this.truncated = false;
    this.boundary = true;
    this.waiting = false;
    this.lastRead = Date.now();
    this.lastSent = this.lastRead;
    this.state = '';
    this.open = true;
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
    this.finished = new Promise((resolve) => { this.resolveFinished = resolve; });
    this.readable = new ReadableStream({
      start: (controller) => { this.controller = controller; },
      pull: (controller) => this.pull(controller),
      cancel: () => { this.open = false; this.settle('gone'); },
    }, { highWaterMark: 0 });
    const tick = Math.max(50, Math.min(stallMs, heartbeatMs) / 4);
    this.timer = setInterval(() => this.tick(stallMs, heartbeatMs), tick);
  }

  settle(state) {
    if (this.state) return;
    this.state = state;
    clearInterval(this.timer);
    if (state !== 'end') this.reader.cancel().catch(() => {});
    this.resolveEnded(state);
  }

  async pull(controller) {
    if (this.state) return this.finished;
    this.waiting = true;
    let read;
    try {
      read = await this.reader.read();
    } catch {
      this.waiting = false;
      this.settle('error');
      return this.finished;
    }
    this.waiting = false;
    this.lastRead = Date.now();
    if (this.state) return this.finished;
    if (read.done) {
      this.settle('end');
      return this.finished;
    }
    const chunk = read.value;
    const n = chunk.byteLength;
    if (n === 0) return;
    if (this.kept + n <= this.keepBytes) {
      this.chunks.push(chunk.slice());
      this.kept += n;
    } else {
      this.truncated = true;
    }
    this.boundary = n >= 2 ? chunk[n - 1] === 10 && chunk[n - 2] === 10 : this.boundary && chunk[0] === 10;
    this.lastSent = this.lastRead;
    controller.enqueue(chunk);
  }

  tick(stallMs, heartbeatMs) {
    const now = Date.now();
    if (this.waiting && now - this.lastRead >= stallMs) return this.settle('stalled');
    // Not waiting on the upstream means the client has not asked for more.
    if (!this.waiting && now - this.lastRead >= stallMs) return this.settle('gone');
    if (this.waiting && this.boundary && now - this.lastSent >= heartbeatMs) {
      this.lastSent = now;
      try {
        this.controller.enqueue(PING);
      } catch {
        this.open = false;
        this.settle('gone');
      }
    }
  }

  /** Everything relayed (up to keepBytes), as one array. */
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

  /** Sends `tail` (may be empty) and closes the client's stream; false if the client is gone. */
  finish(tail) {
    let delivered = this.open;
    if (this.open) {
      try {
        if (tail.byteLength > 0) this.controller.enqueue(tail);
        this.controller.close();
      } catch {
        delivered = false;
      }
    }
    this.open = false;
    this.resolveFinished();
    return delivered;
  }
}
