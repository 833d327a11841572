// The runtime calls that are cheaper as one JavaScript call than as several from wasm (a D1
// statement prepared and bound at once, a D1 result packed into one string, a response built
// with all its headers at once, a request's method, URL and headers read at once, a body read
// whole), byte streams read chunk by chunk from Rust (ChunkReader) and response bodies written
// from Rust (BodyPipe).

// A D1 result as "rows_read rows_written changes <rows as JSON>".
function pack(result) {
  const meta = result.meta ?? {};
  return `${meta.rows_read ?? 0} ${meta.rows_written ?? 0} ${meta.changes ?? 0} ${JSON.stringify(result.results ?? [])}`;
}

export async function d1All(statement) {
  return pack(await statement.all());
}

export async function d1Run(statement) {
  return pack(await statement.run());
}

// A batch's results packed one per line (JSON.stringify writes no line breaks).
export async function d1Batch(db, statements) {
  return (await db.batch(statements)).map(pack).join('\n');
}

// `sql` prepared with the values in `args` (a JSON array, or "" for none) bound to ?1, ?2...:
// one call from Rust instead of one per value.
export function d1Statement(db, sql, args) {
  const statement = db.prepare(sql);
  return args ? statement.bind(...JSON.parse(args)) : statement;
}

// `head` is "name\nvalue\nname\nvalue..." (header names and values never hold a newline).
// A fetched response keeps its status, headers and body, with `head` added.
export function respond(status, bytes, body, fetched, head) {
  const headers = new Headers(fetched ? fetched.headers : undefined);
  if (head) {
    const parts = head.split('\n');
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  }
  if (fetched) return new Response(fetched.body, { status: fetched.status, headers });
  return new Response(bytes ?? body ?? null, { status, headers });
}

// The request's method, URL and the values of the headers named in `names` ("a\nb..."), as
// one string: one line each, "\0" for a header that is absent.
const nameLists = new Map();
export function requestHead(request, names) {
  let list = nameLists.get(names);
  if (!list) nameLists.set(names, (list = names.split('\n')));
  const headers = request.headers;
  let head = `${request.method}\n${request.url}`;
  for (const name of list) head += `\n${headers.get(name) ?? '\0'}`;
  return head;
}

// A byte stream read from Rust (ByteStream in src/platform/streams.rs): `next` resolves the
// next chunk, or null at the end; `cancel` gives the stream up.
export class ChunkReader {
  constructor(stream) {
    this.reader = stream.getReader();
  }

  next() {
    return this.reader.read().then((read) => (read.done ? null : read.value));
  }

  cancel() {
    this.reader.cancel().catch(() => {});
  }
}

// A response body written from Rust: an IdentityTransformStream whose writer takes each
// chunk as it is produced (no Rust object is handed to JavaScript, so nothing waits on the
// garbage collector to be freed). A write resolves once the client has taken the chunk.
export class BodyPipe {
  constructor() {
    const { readable, writable } = new IdentityTransformStream();
    this.readable = readable;
    this.writer = writable.getWriter();
    this.pending = 0;
    this.gone = false;
    this.waiter = null;
    this.writer.closed.catch(() => this.fail());
  }

  // Queues `bytes`; returns how many chunks the client has yet to take, or -1 once it is gone.
  send(bytes) {
    if (this.gone) return -1;
    this.pending++;
    this.writer.write(bytes).then(() => { this.pending--; this.wake(); }, () => this.fail());
    return this.pending;
  }

  // Resolves true once at most `room` chunks are waiting, false if the client goes first.
  drained(room) {
    return new Promise((resolve) => { this.waiter = { room, resolve }; this.wake(); });
  }

  close() {
    if (!this.gone) this.writer.close().catch(() => {});
    this.gone = true;
  }

  fail() {
    this.gone = true;
    this.wake();
  }

  wake() {
    const w = this.waiter;
    if (w && (this.gone || this.pending <= w.room)) {
      this.waiter = null;
      w.resolve(!this.gone);
    }
  }
}

const STALLED = Symbol('stalled');

/**
 * Reads a byte stream whole in JavaScript and resolves one Uint8Array: one crossing into wasm
 * instead of several per chunk. Past `cap` bytes it reads on, discarding, up to `drainCap`
 * bytes in all (a client cut off mid-upload would see a reset instead of the answer), then
 * resolves "too_large". When `stallMs` > 0 and no chunk comes for that long, it cancels the
 * stream and resolves "stalled". Rejects when the stream errors.
 */
export async function readWhole(stream, cap, drainCap, stallMs) {
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  let timer;
  const stall = () => new Promise((resolve) => { timer = setTimeout(() => resolve(STALLED), stallMs); });
  for (;;) {
    const read = stallMs > 0 ? await Promise.race([reader.read(), stall()]) : await reader.read();
    clearTimeout(timer);
    if (read === STALLED) {
      reader.cancel().catch(() => {});
      return 'stalled';
    }
    if (read.done) break;
    size += read.value.byteLength;
    if (size > cap) {
      while (size <= drainCap) {
        const more = await reader.read();
        if (more.done) break;
        size += more.value.byteLength;
      }
      reader.releaseLock();
      return 'too_large';
    }
    chunks.push(read.value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
