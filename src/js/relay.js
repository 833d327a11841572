// workers-rs lacks a tee that lets the runtime pipe a body to the client while Rust reads a copy.
// The byte path behind pass-through streams (src/relay.rs). The upstream body is teed. Until
// its first bytes arrive, the client gets SSE heartbeats (one it does not take means it left),
// then `stallTail` if nothing came within stallMs, or `errorTail` if the upstream broke off
// (both error events). From the first bytes on, one branch is piped to the client by the
// runtime: native code, no JavaScript and no wasm per chunk. The other branch is drained a few
// times a second (what it buffered since) into a copy that Rust reads once at the end for
// usage and the cache; the drain also notices an upstream that stalls mid-stream. The copy is
// capped at keepBytes, so the stream's last bytes (where the usage event is) are also kept
// apart, whatever the stream's size. `ended` says how the stream ended: "end" (the upstream
// finished), "gone" (the client left), "stalled" (nothing for stallMs; the caller aborts the
// upstream) or "error" (the upstream broke off). The heartbeat and stall rules and their
// values are Rust's (`Pacing` in src/upstream.rs): this file applies them to a stream Rust does
// not read. Once piping, a broken or stalled upstream ends the client's stream without its
// final `data: [DONE]`, as a direct connection to the upstream would.
//
// The gateway always asks the upstream for usage. When the client did not (`stripUsage`), the
// client's branch goes through `withoutUsage`, which takes out what include_usage added (the
// final usage event and each chunk's `"usage":null`), so the client gets what a direct call
// would have given it; otherwise the pipe stays native.

const TIMEOUT = Symbol('timeout');
const PING = new TextEncoder().encode(': ping\n\n');
const sleep = (ms) => new Promise((resolve) => { setTimeout(() => resolve(TIMEOUT), ms); });
/** The least of the stream's last bytes kept apart from the capped copy. */
const TAIL_BYTES = 64 * 1024;

export class Relay {
  constructor(upstream, stallMs, heartbeatMs, keepBytes, stallTail, errorTail, signal, stripUsage) {
    const [toClient, toCopy] = upstream.tee();
    const pipe = new IdentityTransformStream();
    this.readable = pipe.readable;
    this.writable = pipe.writable;
    this.toClient = toClient;
    this.stripUsage = stripUsage;
    this.reader = toCopy.getReader();
    this.pending = null;
    this.chunks = [];
    this.kept = 0;
    this.last = [];
    this.lastBytes = 0;
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
    const source = this.stripUsage ? this.toClient.pipeThrough(withoutUsage()) : this.toClient;
    // preventCancel: the client leaving must not cancel the upstream before the copy is drained.
    source.pipeTo(this.writable, { preventCancel: true }).then(
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
    this.last.push(chunk);
    this.lastBytes += chunk.byteLength;
    while (this.lastBytes - this.last[0].byteLength >= TAIL_BYTES) this.lastBytes -= this.last.shift().byteLength;
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
    const out = join(this.chunks, this.kept);
    this.chunks = [];
    return out;
  }

  /** The stream's last bytes (at least TAIL_BYTES of them, or all), as one array. */
  tail() {
    const out = join(this.last, this.lastBytes);
    this.last = [];
    return out;
  }
}

function join(chunks, size) {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

// ---- withoutUsage: an SSE stream of chat.completion.chunk events, as if include_usage was unset.

const LF = 10;
const CR = 13;
const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const DATA = new TextEncoder().encode('data:');
const USAGE = new TextEncoder().encode('"usage"');
const CHOICES = new TextEncoder().encode('"choices"');
const NULL = new TextEncoder().encode('null');
const NULL_USAGE_LAST = new TextEncoder().encode(',"usage":null}');
/** An event longer than this is passed on as it is, unread (no upstream sends one). */
const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * A transform that drops the usage event (`"choices":[]` with a usage object) and each other
 * event's top-level `"usage":null` member, and passes every other byte on as it came. Events are
 * read whole (a chunk may end anywhere: the rest waits for the next chunk); events whose lines
 * end in LF or CRLF, as OpenAI-compatible servers send them. Only the bytes of a changed event
 * are rewritten; the JSON is scanned, never parsed.
 */
export function withoutUsage() {
  let rest = null;
  return new TransformStream({
    transform(chunk, controller) {
      let buf = chunk;
      if (rest) {
        buf = join([rest, chunk], rest.byteLength + chunk.byteLength);
        rest = null;
      }
      const out = [];
      let passed = 0; // buf[passed, at) is passed on as it is
      let at = 0; // where the current event starts
      let data = -1; // its `data:` line, [data, dataEnd)
      let dataEnd = -1;
      let lines = 0; // its data lines
      let line = 0;
      for (;;) {
        const lf = buf.indexOf(LF, line);
        if (lf < 0) break;
        const end = lf > line && buf[lf - 1] === CR ? lf - 1 : lf;
        if (end > line) {
          if (startsWith(buf, line, DATA)) {
            lines++;
            data = line;
            dataEnd = end;
          }
        } else {
          const verdict = lines === 1 ? usageIn(buf, data, dataEnd) : KEEP;
          if (verdict === DROP) {
            if (passed < at) out.push(buf.subarray(passed, at));
            passed = lf + 1;
          } else if (verdict === CUT) {
            out.push(buf.subarray(passed, cutFrom));
            passed = cutTo;
          }
          at = lf + 1;
          lines = 0;
        }
        line = lf + 1;
      }
      if (buf.byteLength - at > MAX_EVENT_BYTES) at = buf.byteLength;
      if (passed < at) out.push(buf.subarray(passed, at));
      if (at < buf.byteLength) rest = buf.slice(at);
      if (out.length === 1) controller.enqueue(out[0]);
      else if (out.length > 1) controller.enqueue(join(out, out.reduce((n, c) => n + c.byteLength, 0)));
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}

const KEEP = 0;
const DROP = 1;
const CUT = 2;
// Where usageIn's CUT is: module state rather than an object per event.
let cutFrom = 0;
let cutTo = 0;

/**
 * What include_usage added to the event whose data line is buf[from, to): KEEP (nothing),
 * DROP (the event is the usage event) or CUT (its `"usage":null` member is buf[cutFrom, cutTo),
 * a comma included).
 */
function usageIn(buf, from, to) {
  // Most chunks end `,"usage":null}`: in JSON that is the top object's last member.
  const last = to - NULL_USAGE_LAST.length;
  if (last > from && startsWith(buf, last, NULL_USAGE_LAST)) {
    cutFrom = last;
    cutTo = to - 1;
    return CUT;
  }
  const json = from + DATA.length + (buf[from + DATA.length] === 32 ? 1 : 0);
  const members = topMembers(buf, json, to);
  if (!members) return KEEP;
  let usage = -1;
  let choices = -1;
  for (let m = 0; m < members.length; m += 4) {
    const length = members[m + 1] - members[m];
    if (length === USAGE.length && startsWith(buf, members[m], USAGE)) usage = m;
    else if (length === CHOICES.length && startsWith(buf, members[m], CHOICES)) choices = m;
  }
  if (usage < 0) return KEEP;
  const isNull = members[usage + 3] - members[usage + 2] === NULL.length && startsWith(buf, members[usage + 2], NULL);
  if (!isNull) {
    const empty = choices >= 0 && isEmptyArray(buf, members[choices + 2], members[choices + 3]);
    return empty ? DROP : KEEP;
  }
  // The member with the comma before it (after it, when it comes first).
  if (usage > 0) {
    cutFrom = members[usage - 1];
    cutTo = members[usage + 3];
  } else {
    cutFrom = members[0];
    cutTo = members.length > 4 ? members[4] : members[3];
  }
  return CUT;
}

function startsWith(buf, at, bytes) {
  if (at + bytes.length > buf.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

const isSpace = (c) => c === 32 || c === 9 || c === LF || c === CR;

function skipSpace(buf, i, to) {
  while (i < to && isSpace(buf[i])) i++;
  return i;
}

function isEmptyArray(buf, from, to) {
  return buf[from] === OPEN_ARRAY && skipSpace(buf, from + 1, to) === to - 1 && buf[to - 1] === CLOSE_ARRAY;
}

/**
 * The top-level members of the JSON object in buf[from, to), as a flat list of (name start,
 * name end, value start, value end) offsets; null when it is not an object this reads.
 */
function topMembers(buf, from, to) {
  let i = skipSpace(buf, from, to);
  if (buf[i] !== OPEN_OBJECT) return null;
  const out = [];
  i = skipSpace(buf, i + 1, to);
  if (buf[i] === CLOSE_OBJECT) return out;
  for (;;) {
    if (buf[i] !== QUOTE) return null;
    const name = i;
    i = stringEnd(buf, i, to);
    if (i < 0) return null;
    const nameEnd = i;
    i = skipSpace(buf, i, to);
    if (buf[i] !== COLON) return null;
    const value = skipSpace(buf, i + 1, to);
    i = valueEnd(buf, value, to);
    if (i < 0) return null;
    out.push(name, nameEnd, value, i);
    i = skipSpace(buf, i, to);
    if (buf[i] === CLOSE_OBJECT) return out;
    if (buf[i] !== COMMA) return null;
    i = skipSpace(buf, i + 1, to);
  }
}

/** Just after the string that starts at buf[i] (a quote), or -1. */
function stringEnd(buf, i, to) {
  for (;;) {
    const quote = buf.indexOf(QUOTE, i + 1);
    if (quote < 0 || quote >= to) return -1;
    let escapes = 0;
    while (buf[quote - 1 - escapes] === BACKSLASH) escapes++;
    if (escapes % 2 === 0) return quote + 1;
    i = quote;
  }
}

/** Just after the value that starts at buf[i], or -1. */
function valueEnd(buf, i, to) {
  const c = buf[i];
  if (c === QUOTE) return stringEnd(buf, i, to);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    while (i < to) {
      const b = buf[i];
      if (b === QUOTE) {
        i = stringEnd(buf, i, to);
        if (i < 0) return -1;
        continue;
      }
      if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++;
      else if ((b === CLOSE_OBJECT || b === CLOSE_ARRAY) && --depth === 0) return i + 1;
      i++;
    }
    return -1;
  }
  while (i < to && buf[i] !== COMMA && buf[i] !== CLOSE_OBJECT && !isSpace(buf[i])) i++;
  return i;
}
